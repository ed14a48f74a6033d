/**
 * How far a copy of one file has got, for the progress line: the bytes
 * copied so far, said every PROGRESS_BYTES or PROGRESS_MS, whichever comes
 * first. A small file is done long before either, so it never says anything:
 * the many-small-files runs pay one clock read per chunk, nothing more.
 */

/** Told the bytes of the file copied so far (a running total, never a delta). */
export type CopyProgressHook = (bytesSoFar: number) => void;

/** A large file says how far it got at least this often by bytes… */
export const PROGRESS_BYTES = 64 * 1024 * 1024;
/** …and by time (a slow disk): the progress line redraws as often. */
export const PROGRESS_MS = 250;

export class CopyProgress {
  readonly #hook: CopyProgressHook;
  #saidBytes = 0;
  #saidAt = Date.now();

  constructor(hook: CopyProgressHook) {
    this.#hook = hook;
  }

  /** The copy has reached `bytesSoFar`: the hook hears of it when enough bytes or time have passed. */
  reached(bytesSoFar: number): void {
    if (bytesSoFar <= this.#saidBytes) return;
    const now = Date.now();
    if (bytesSoFar - this.#saidBytes < PROGRESS_BYTES && now - this.#saidAt < PROGRESS_MS) return;
    this.#saidBytes = bytesSoFar;
    this.#saidAt = now;
    this.#hook(bytesSoFar);
  }
}
