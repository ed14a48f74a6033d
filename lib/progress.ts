import type { RunReport } from "./report.ts";
import { formatBytes, formatDuration } from "./size.ts";

/**
 * A one-line progress display on a terminal (files, bytes, rate, ETA),
 * redrawn a few times a second on stderr. Does nothing when stderr is not a
 * terminal, so logs and pipes stay clean.
 */
export class ProgressLine {
  readonly #report: RunReport;
  readonly #stream: NodeJS.WriteStream;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(report: RunReport, stream: NodeJS.WriteStream = process.stderr) {
    this.#report = report;
    this.#stream = stream;
  }

  start(): this {
    if (this.#stream.isTTY) this.#timer = setInterval(() => this.#draw(), 250);
    return this;
  }

  stop(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#stream.write("\r\x1b[K");
  }

  #draw(): void {
    const { files, bytes, plannedFiles, plannedBytes } = this.#report.progress;
    const elapsed = (Date.now() - this.#report.startedAt) / 1000;
    const rate = elapsed > 0 ? bytes / elapsed : 0;
    const left = Math.max(0, plannedBytes - bytes);
    const eta = rate > 0 && left > 0 ? ` ETA ${formatDuration((left / rate) * 1000)}` : "";
    const unchanged = this.#report.counts.unchanged;
    const line = `${files}/${plannedFiles} files, ${formatBytes(bytes)}/${formatBytes(plannedBytes)} copied, ${formatBytes(rate)}/s${eta}, ${unchanged} unchanged`;
    this.#stream.write(`\r\x1b[K${line.slice(0, (this.#stream.columns ?? 120) - 1)}`);
  }
}
