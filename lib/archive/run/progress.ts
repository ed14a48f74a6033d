import { readlinkSync } from "node:fs";
import type { RunReport } from "./report.ts";
import { formatBytes, formatDuration } from "../../size.ts";

/** The rate is of the last this many ms: a phase that is slower (parity after a copy) shows its own pace. */
const RATE_WINDOW_MS = 10_000;

/**
 * A one-line progress display on a terminal (files, bytes, rate, ETA),
 * redrawn a few times a second on stderr. Does nothing when stderr is not a
 * terminal, so logs and pipes stay clean.
 */
export class ProgressLine {
  readonly #report: RunReport;
  #stream: NodeJS.WriteStream | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Work done (bytes copied and through the parity encoder) at each draw of the rate's window, oldest first. */
  readonly #samples: { at: number; worked: number }[];

  /** `stream` defaults to stderr, touched only when it is a terminal (see stderrIsTerminal). */
  constructor(report: RunReport, stream?: NodeJS.WriteStream) {
    this.#report = report;
    this.#stream = stream;
    this.#samples = [{ at: report.startedAt, worked: 0 }];
  }

  start(): this {
    const terminal = this.#stream ? this.#stream.isTTY : stderrIsTerminal();
    if (!terminal) return this;
    this.#stream ??= process.stderr;
    this.#timer = setInterval(() => this.#draw(), 250);
    return this;
  }

  stop(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#stream?.write("\r\x1b[K");
  }

  #draw(): void {
    const { files, bytes, plannedFiles, plannedBytes, parityBytes, parityPlannedBytes } = this.#report.progress;
    // The rate is of the run's work, bytes copied and bytes through the parity
    // encoder, over the last seconds: of copies alone since the start it fell
    // steadily while a large file's parity was made, and the ETA ignored it.
    const now = Date.now();
    const worked = bytes + parityBytes;
    const samples = this.#samples;
    samples.push({ at: now, worked });
    while (samples.length > 2 && samples[1].at <= now - RATE_WINDOW_MS) samples.shift();
    const elapsed = (now - samples[0].at) / 1000;
    const rate = elapsed > 0 ? (worked - samples[0].worked) / elapsed : 0;
    const left = Math.max(0, plannedBytes - bytes) + Math.max(0, parityPlannedBytes - parityBytes);
    const eta = rate > 0 && left > 0 ? ` ETA ${formatDuration((left / rate) * 1000)}` : "";
    const unchanged = this.#report.counts.unchanged;
    // Parity of a large file takes a while after its copy: its bytes through the encoder show it moving.
    const parity = parityPlannedBytes > 0 ? `, parity ${formatBytes(parityBytes)}/${formatBytes(parityPlannedBytes)}` : "";
    const line = `${files}/${plannedFiles} files, ${formatBytes(bytes)}/${formatBytes(plannedBytes)} copied${parity}, ${formatBytes(rate)}/s${eta}, ${unchanged} unchanged`;
    this.#stream?.write(`\r\x1b[K${line.slice(0, (this.#stream.columns ?? 120) - 1)}`);
  }
}

/**
 * Whether stderr is a terminal, asked of /proc (Blaine runs on Linux):
 * process.stderr and node:tty load Node's stream modules, a tenth of a
 * run that has nothing to do.
 */
function stderrIsTerminal(): boolean {
  try {
    return /^\/dev\/(pts\/\d+|tty\w*|console)$/.test(readlinkSync("/proc/self/fd/2"));
  } catch {
    return false;
  }
}
