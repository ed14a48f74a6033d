import { RateWindow, TerminalLine, etaText } from "../../cli/progress-line.ts";
import { ExitCode } from "../../errors.ts";
import { formatBytes } from "../../size.ts";

/** What a progress line shows: bytes done of planned, and a few words after. */
export interface ImageWork {
  /** Bytes done so far (read by a backup, restored by a restore). */
  done(): number;
  readonly planned: number;
  /** "read", "restored". */
  readonly verb: string;
  /** More to say after the bytes, e.g. "1.2 GiB written". */
  detail?(): string;
}

/**
 * The progress line of `blaine image backup` and `restore` on a terminal:
 * `NAME: 1.2 GiB/3.5 GiB read, 800 MiB written, 450 MiB/s ETA 5s`, drawn
 * by the shared TerminalLine (nothing when stderr is not a terminal).
 */
export function imageProgress(name: string, work: ImageWork, stream?: NodeJS.WriteStream): TerminalLine {
  const rate = new RateWindow();
  return new TerminalLine(() => {
    const done = work.done();
    const perSecond = rate.sample(done);
    const detail = work.detail ? `, ${work.detail()}` : "";
    return `${name}: ${formatBytes(done)}/${formatBytes(work.planned)} ${work.verb}${detail}, ${formatBytes(perSecond)}/s${etaText(work.planned - done, perSecond)}`;
  }, stream);
}

/** The exit code of a command stopped by a signal. */
export function interruptedExit(signal: "SIGINT" | "SIGTERM"): ExitCode {
  return signal === "SIGINT" ? ExitCode.interrupted : ExitCode.terminated;
}

/**
 * Runs `work` with Ctrl-C (and SIGTERM) turned into an abort of `signal`
 * instead of the process's end, so the command can say what it left and
 * exit 130 (143). Work that ends despite the signal (it was past its last
 * check) is done: its value comes back. Work that fails after the signal
 * was interrupted: the signal's name comes back.
 */
export async function withInterrupt<T>(work: (signal: AbortSignal) => Promise<T>): Promise<{ value: T; interrupted?: undefined } | { value?: undefined; interrupted: "SIGINT" | "SIGTERM" }> {
  const controller = new AbortController();
  let interrupted: "SIGINT" | "SIGTERM" | undefined;
  const onSignal = (name: "SIGINT" | "SIGTERM") => {
    interrupted ??= name;
    controller.abort(new Error(`interrupted by ${name}`));
  };
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    return { value: await work(controller.signal) };
  } catch (error) {
    if (interrupted) return { interrupted };
    throw error;
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}
