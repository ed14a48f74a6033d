import { openArchiveRun, type ArchiveRun } from "./run-context.ts";
import type { RunResult } from "./finish-run.ts";
import type { Output } from "../../cli/output.ts";
import type { Settings } from "../settings.ts";
import type { RunReport } from "./report.ts";

/**
 * What `blaine run PIPELINE` hands a pipeline script: the merged settings,
 * the report the progress line reads, a signal aborted on Ctrl-C, and a way
 * to open the archive (catalog + disk + every stage's options).
 */
export interface PipelineContext {
  readonly settings: Settings;
  readonly report: RunReport;
  readonly signal: AbortSignal;
  readonly output: Output;
  openArchiveRun(): Promise<ArchiveRun>;
}

/**
 * A pipeline script's default export. Return a RunResult (the summary and
 * exit code come from it) or a plain exit code.
 */
export type Pipeline = (context: PipelineContext) => Promise<RunResult | number | void>;

/** `opened`: each archive run the script opens (blaine run checks that each was finished). */
export function createPipelineContext(settings: Settings, report: RunReport, signal: AbortSignal, output: Output, opened?: ArchiveRun[]): PipelineContext {
  return {
    settings,
    report,
    signal,
    output,
    openArchiveRun: async () => {
      const run = await openArchiveRun(settings, { report, signal });
      opened?.push(run);
      return run;
    },
  };
}
