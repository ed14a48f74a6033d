/**
 * The archive pipeline, what `blaine run` runs by default:
 * walker → differ → hasher → dedup → copier → parity → manifest writer, then
 * the deletions, the parity bookkeeping and the end-of-run bookkeeping.
 * Composition only. It imports the modules it composes rather than
 * lib/index.ts (where a script of your own finds the same names): loading
 * the whole public surface (PAR2, block images, every command) cost a run
 * with nothing to do a twentieth of its time.
 */
import { walk } from "../lib/archive/stages/walker.ts";
import { diff } from "../lib/archive/stages/differ.ts";
import { hashWhereDuplicatePossible } from "../lib/archive/stages/hasher.ts";
import { dedup } from "../lib/archive/stages/dedup.ts";
import { copier } from "../lib/archive/stages/copier.ts";
import { parity } from "../lib/archive/stages/parity.ts";
import { writeManifest } from "../lib/archive/stages/manifest-writer.ts";
import { drain } from "../lib/pipeline/pipe.ts";
import { applyDeletions } from "../lib/archive/run/deletions.ts";
import { finishRun, type RunResult } from "../lib/archive/run/finish-run.ts";
import { openParity } from "../lib/archive/run/parity-run.ts";
import type { PipelineContext } from "../lib/archive/run/pipeline-context.ts";

export default async function archive(context: PipelineContext): Promise<RunResult> {
  const run = await context.openArchiveRun();
  try {
    const entries = walk(run.sources, run.walk);
    const changed = diff(entries, run.diff);
    const hashed = hashWhereDuplicatePossible(changed, run.hash);
    const routed = dedup(hashed, run.dedup);
    const parityRun = openParity(run);
    const stored = copier(routed, run.copier);
    const guarded = parity(stored, parityRun.stage);
    await drain(writeManifest(guarded, run.manifest));
    await applyDeletions(run);
    await parityRun.settle();
    return await finishRun(run);
  } finally {
    run.close();
  }
}
