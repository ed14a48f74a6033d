/**
 * Wires a run's parity: the options of the parity stage and the settling
 * step after deletions, sharing the ledger of sets the stage made. Kept
 * apart from run-context.ts so a pipeline adds parity with two lines.
 */
import type { StoredSet } from "../disk/parity-store.ts";
import { requireParityEngine } from "../../system/par2-tools.ts";
import type { ParityOptions } from "../stages/parity.ts";
import type { ArchiveRun } from "./run-context.ts";
import { settleParity, type ParitySettled } from "./settle-parity.ts";

export interface ParityRun {
  /** Options for the parity stage (`parity(stored, parityRun.stage)`). */
  readonly stage: ParityOptions;
  /** After the manifest writer and the deletions: records durable sets, makes missing ones, removes stale ones. */
  settle(): Promise<ParitySettled>;
}

export function openParity(run: ArchiveRun): ParityRun {
  const { settings, catalog, report, signal } = run;
  const policy = settings.parity === undefined ? undefined : { percent: settings.parity, engine: settings.parityEngine };
  if (policy && policy.engine !== "builtin" && !settings.dryRun) requireParityEngine(policy.engine);
  const made = new Map<string, Map<string, StoredSet>>();
  const diskOfTemp = (tempName: string) => run.writer.diskOfTemp(tempName);
  const stage: ParityOptions = { policy, disks: run.disks, diskOfTemp, catalog, report, made, space: run.space, onNotStored: (item) => run.runLinks.notStored(item.size, item.hash), dryRun: settings.dryRun, signal };
  return {
    stage,
    settle: () => settleParity({ catalog, disks: run.disks, policy, made, report, dryRun: settings.dryRun, signal }),
  };
}
