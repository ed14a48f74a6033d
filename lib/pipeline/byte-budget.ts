/**
 * A counting semaphore over bytes: at most `capacity` bytes of work in
 * flight. A request larger than the whole budget waits for all of it.
 * Waiters are served in order, so a large file is not starved by small ones.
 */
export class ByteBudget {
  readonly #capacity: number;
  #available: number;
  readonly #waiters: { bytes: number; resolve: () => void }[] = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#available = capacity;
  }

  async acquire(bytes: number): Promise<number> {
    const wanted = Math.min(bytes, this.#capacity);
    if (this.#waiters.length === 0 && this.#available >= wanted) {
      this.#available -= wanted;
      return wanted;
    }
    await new Promise<void>((resolve) => this.#waiters.push({ bytes: wanted, resolve }));
    return wanted;
  }

  /** Gives back what `acquire` returned. */
  release(granted: number): void {
    this.#available += granted;
    while (this.#waiters.length > 0 && this.#available >= this.#waiters[0].bytes) {
      const next = this.#waiters.shift()!;
      this.#available -= next.bytes;
      next.resolve();
    }
  }
}
