import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { RunResult } from "../run/finish-run.ts";
import type { Settings } from "../settings.ts";
import { BlaineError, ExitCode, UsageError, type ExitCode as ExitCodeValue } from "../../errors.ts";
import type { ArchiveRun } from "../run/run-context.ts";
import { createPipelineContext, type Pipeline } from "../run/pipeline-context.ts";
import { ProgressLine } from "../run/progress.ts";
import { RunReport } from "../run/report.ts";
import type { Output } from "../../cli/output.ts";
import { formatRunSummary } from "./summary.ts";
import { quotedPath } from "../../fs/byte-names.ts";

export const DEFAULT_PIPELINE = join(import.meta.dir, "..", "..", "..", "pipelines", "archive.ts");

/** Whether a `blaine run` argument names a pipeline script rather than a source. */
export function isPipelineArgument(argument: string): boolean {
  return /\.(ts|js|mjs|mts)$/.test(argument) && existsSync(resolve(argument));
}

/**
 * Runs a pipeline script (the archive pipeline by default) with progress on
 * a terminal, then prints the summary (or the JSON result) and returns the
 * exit code. Ctrl-C aborts the stages; their cleanup runs before exit.
 */
export async function runPipeline(pipelinePath: string | undefined, settings: Settings, output: Output): Promise<ExitCodeValue> {
  const path = pipelinePath ? resolve(pipelinePath) : DEFAULT_PIPELINE;
  const module = (await import(path)) as { default?: Pipeline };
  if (typeof module.default !== "function") {
    throw new UsageError(`${pipelinePath}: a pipeline script must export a default async function (context) => result`);
  }
  const report = new RunReport();
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error("interrupted"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const progress = new ProgressLine(report).start();
  try {
    const opened: ArchiveRun[] = [];
    const outcome = await module.default(createPipelineContext(settings, report, controller.signal, output, opened));
    progress.stop();
    if (opened.some((run) => !run.finished)) {
      // Its deletions, parity and record are run.finish's (the sink): a run that ends without it is not a run that ended.
      throw new BlaineError(
        `${pipelinePath ?? path}: the pipeline opened an archive run and returned without run.finish(…): deletions, parity and the run's record were not done; end the pipeline with run.finish(writeManifest(…))`,
      );
    }
    if (typeof outcome === "number") return outcome as ExitCodeValue;
    if (!outcome) return ExitCode.ok;
    printResult(outcome, settings, output);
    return outcome.exitCode;
  } catch (error) {
    progress.stop();
    if (controller.signal.aborted) {
      output.say("Interrupted: what was stored so far is in the catalogs; the next run continues from there.");
      return ExitCode.failure;
    }
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function printResult(result: RunResult, settings: Settings, output: Output): void {
  if (settings.dryRun && result.plan) for (const line of result.plan) output.say(`would ${line}`);
  if (!output.json) for (const warning of result.warnings.slice(0, 20)) output.say(`warning: ${quotedPath(warning.path)}: ${warning.message}`);
  output.say(formatRunSummary(result));
  output.result(result);
}
