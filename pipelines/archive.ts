/**
 * The archive pipeline, what `blaine run` runs by default:
 * walker → differ → hasher → dedup → copier → parity → manifest writer, then
 * the deletions, the parity bookkeeping and the end-of-run bookkeeping.
 * Composition only.
 */
import {
  applyDeletions,
  copier,
  dedup,
  diff,
  drain,
  finishRun,
  hashWhereDuplicatePossible,
  openParity,
  parity,
  walk,
  writeManifest,
  type PipelineContext,
  type RunResult,
} from "../lib/index.ts";

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
