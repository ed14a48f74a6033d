import type { RunReport } from "./report.ts";
import { formatBytes } from "../../size.ts";
import { RateWindow, TerminalLine, etaText } from "../../cli/progress-line.ts";

/**
 * The archive run's progress line on a terminal (files, bytes, parity,
 * rate, ETA), drawn by the shared TerminalLine on stderr.
 */
export class ProgressLine {
  readonly #report: RunReport;
  readonly #line: TerminalLine;
  readonly #rate: RateWindow;

  /** `stream` defaults to stderr, touched only when it is a terminal. */
  constructor(report: RunReport, stream?: NodeJS.WriteStream) {
    this.#report = report;
    this.#rate = new RateWindow(report.startedAt);
    this.#line = new TerminalLine(() => this.#render(), stream);
  }

  start(): this {
    this.#line.start();
    return this;
  }

  stop(): void {
    this.#line.stop();
  }

  #render(): string {
    const { files, bytes, plannedFiles, plannedBytes, parityBytes, parityPlannedBytes } = this.#report.progress;
    // The rate is of the run's work, bytes copied and bytes through the parity
    // encoder, over the last seconds: of copies alone since the start it fell
    // steadily while a large file's parity was made, and the ETA ignored it.
    const rate = this.#rate.sample(bytes + parityBytes);
    const left = Math.max(0, plannedBytes - bytes) + Math.max(0, parityPlannedBytes - parityBytes);
    const unchanged = this.#report.counts.unchanged;
    // Parity of a large file takes a while after its copy: its bytes through the encoder show it moving.
    const parity = parityPlannedBytes > 0 ? `, parity ${formatBytes(parityBytes)}/${formatBytes(parityPlannedBytes)}` : "";
    return `${files}/${plannedFiles} files, ${formatBytes(bytes)}/${formatBytes(plannedBytes)} copied${parity}, ${formatBytes(rate)}/s${etaText(left, rate)}, ${unchanged} unchanged`;
  }
}
