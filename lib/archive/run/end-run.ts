import { drain } from "../../pipeline/pipe.ts";
import type { StoredFile } from "../stages/types.ts";
import { applyDeletions, countLinkedNew } from "./deletions.ts";
import { finishRun, type RunResult } from "./finish-run.ts";
import type { ArchiveRun } from "./run-context.ts";
import { settleParity } from "./settle-parity.ts";

/** Which stages the pipeline composed, as each says when it begins. */
export interface StagesUsed {
  readonly diff: boolean;
  readonly parity: boolean;
  readonly manifest: boolean;
}

/**
 * The end of every archive run, whatever stages its pipeline composes (the
 * sink behind ArchiveRun.finish): pulls the last stage's output to its end,
 * removes what the run did not see (deletions, with the safety stop),
 * counts the new paths that waited for them (counts are final from here),
 * settles parity (records the sets made, makes the missing ones, removes
 * stale ones) and records the run (finishRun). A pipeline without the
 * parity stage on an archive with parity is warned: its sets are made here,
 * from the data on the disks. A pipeline without the differ or the manifest
 * writer deletes nothing: what it did not compare or store is not gone.
 */
export async function endRun(run: ArchiveRun, stored: AsyncIterable<StoredFile>, stagesUsed: StagesUsed): Promise<RunResult> {
  const { settings, report } = run;
  await drain(stored);
  if (stagesUsed.diff && stagesUsed.manifest) await applyDeletions(run);
  else {
    // Without the differ no path counts as seen; without the manifest writer no new name is stored:
    // either way the deletions would take archived files (a rename's only copy) out of the archive.
    const missing = [stagesUsed.diff ? undefined : "differ (diff)", stagesUsed.manifest ? undefined : "manifest writer (writeManifest)"].filter(Boolean).join(" and ");
    report.warn(run.disk.dir, `this pipeline has no ${missing}: nothing archived is deleted by this run, so no file leaves the archive unseen`);
  }
  countLinkedNew(run);
  if (run.parity.policy && !stagesUsed.parity && !settings.dryRun) {
    report.warn(run.disk.dir, "this pipeline has no parity stage: the parity of new files is made after the run, from their data on the disk (each is read again)");
  }
  await settleParity({ catalog: run.catalog, disks: run.disks, policy: run.parity.policy, made: run.paritySetsMade, report, dryRun: settings.dryRun, signal: run.signal });
  return await finishRun(run);
}
