/**
 * The archive pipeline, what `blaine run` runs by default:
 * walker → differ → hasher → planner → copier → parity → manifest writer,
 * into the run's sink (run.finish), which ends every run alike: deletions,
 * final counts, parity settled, the run recorded. A file whose placement
 * fell through comes back through the copier and the parity stage (see
 * ManifestWriterOptions.again). Composition only. It imports the modules it
 * composes rather than lib/index.ts (where a script of your own finds the
 * same names): loading the whole public surface (PAR2, block images, every
 * command) cost a run with nothing to do a twentieth of its time.
 */
import { walk } from "../lib/archive/stages/walker.ts";
import { diff } from "../lib/archive/stages/differ.ts";
import { hashWhereDuplicatePossible } from "../lib/archive/stages/hasher.ts";
import { plan } from "../lib/archive/stages/plan.ts";
import { copier } from "../lib/archive/stages/copier.ts";
import { parity } from "../lib/archive/stages/parity.ts";
import { writeManifest } from "../lib/archive/stages/manifest-writer.ts";
import type { RunResult } from "../lib/archive/run/finish-run.ts";
import type { PipelineContext } from "../lib/archive/run/pipeline-context.ts";

export default async function archive(context: PipelineContext): Promise<RunResult> {
  const run = await context.openArchiveRun();
  try {
    const entries = walk(run.sources, run.walk);
    const changed = diff(entries, run.diff);
    const hashed = hashWhereDuplicatePossible(changed, run.hash);
    const planned = plan(hashed, run.plan);
    const copied = copier(planned, run.copier);
    const guarded = parity(copied, run.parity);
    return await run.finish(writeManifest(guarded, run.manifest));
  } finally {
    run.close();
  }
}
