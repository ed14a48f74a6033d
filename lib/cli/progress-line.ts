import { readlinkSync } from "node:fs";
import { formatDuration } from "../size.ts";

/**
 * The one-line progress display every product draws on a terminal: a line
 * rendered by the caller, redrawn a few times a second on stderr and
 * cleared when it stops; the rate of work over the last seconds and an ETA.
 * Does nothing when stderr is not a terminal, so logs and pipes stay clean.
 */
export class TerminalLine {
  readonly #render: () => string;
  #stream: NodeJS.WriteStream | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** `stream` defaults to stderr, touched only when it is a terminal (see stderrIsTerminal). */
  constructor(render: () => string, stream?: NodeJS.WriteStream) {
    this.#render = render;
    this.#stream = stream;
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
    const line = this.#render();
    // A terminal of no known width (a pty never sized, as `script` makes) says 0 columns: the line was cut to nothing but its last character.
    this.#stream?.write(`\r\x1b[K${line.slice(0, (this.#stream.columns || 120) - 1)}`);
  }
}

/** The rate is of the last this many ms: a phase that is slower shows its own pace. */
const RATE_WINDOW_MS = 10_000;

/** Bytes of work per second over the last seconds, from samples of a growing count. */
export class RateWindow {
  /** Work done at each sample in the window, oldest first. */
  readonly #samples: { at: number; worked: number }[];

  constructor(startedAt = Date.now()) {
    this.#samples = [{ at: startedAt, worked: 0 }];
  }

  /** Records the work done so far; the rate over the window, per second. */
  sample(worked: number, now = Date.now()): number {
    const samples = this.#samples;
    samples.push({ at: now, worked });
    while (samples.length > 2 && samples[1].at <= now - RATE_WINDOW_MS) samples.shift();
    const elapsed = (now - samples[0].at) / 1000;
    return elapsed > 0 ? (worked - samples[0].worked) / elapsed : 0;
  }
}

/** " ETA 1m 5s" for `left` bytes at `rate` per second, or "" when unknown or done. */
export function etaText(left: number, rate: number): string {
  return rate > 0 && left > 0 ? ` ETA ${formatDuration((left / rate) * 1000)}` : "";
}

/**
 * Whether stderr is a terminal, asked of /proc (Blaine runs on Linux):
 * process.stderr and node:tty load Node's stream modules, a tenth of a
 * run that has nothing to do.
 */
export function stderrIsTerminal(): boolean {
  try {
    return /^\/dev\/(pts\/\d+|tty\w*|console)$/.test(readlinkSync("/proc/self/fd/2"));
  } catch {
    return false;
  }
}
