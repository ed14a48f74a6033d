/**
 * Block-sized read buffers, reused: a backup reads gigabytes in 4 MiB
 * blocks, and a fresh buffer for each left that much garbage for the
 * collector (and page faults for the kernel). A buffer is given back by the
 * stage that last needs its bytes; one that is never given back (an error)
 * is simply collected.
 */
export class BlockBuffers {
  readonly blockSize: number;
  readonly #free: Buffer[] = [];
  readonly #keep: number;

  /** `keep`: free buffers held at most (the rest are left to the collector). */
  constructor(blockSize: number, keep = 8) {
    this.blockSize = blockSize;
    this.#keep = keep;
  }

  /** A buffer of `length` (≤ blockSize) bytes, its content undefined. */
  take(length: number): Buffer {
    return (this.#free.pop() ?? Buffer.allocUnsafe(this.blockSize)).subarray(0, length);
  }

  /** Gives back a buffer from take() once nothing reads it any more. */
  give(data: Uint8Array | null): void {
    if (!data || data.byteOffset !== 0 || data.buffer.byteLength !== this.blockSize || this.#free.length >= this.#keep) return;
    this.#free.push(Buffer.from(data.buffer, 0, this.blockSize));
  }
}
