/**
 * A volume's change map: one bit per chunk, set when the chunk is known to
 * have changed since the session the volume's tracking counts from
 * (harvested by monitor from snapshot deltas, added by diff --remap). Kept
 * in the catalog as base64; it grows with the volume.
 */
export class ChangeMap {
  #bits: Uint8Array;

  private constructor(bits: Uint8Array) {
    this.#bits = bits;
  }

  static empty(): ChangeMap {
    return new ChangeMap(new Uint8Array(0));
  }

  static parse(text: string | null | undefined): ChangeMap {
    return new ChangeMap(text ? new Uint8Array(Buffer.from(text, "base64")) : new Uint8Array(0));
  }

  text(): string | null {
    return this.count() === 0 ? null : Buffer.from(this.#bits).toString("base64");
  }

  add(index: number): void {
    const byte = index >> 3;
    if (byte >= this.#bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.#bits.length * 2));
      grown.set(this.#bits);
      this.#bits = grown;
    }
    this.#bits[byte]! |= 1 << (index & 7);
  }

  addAll(indexes: Iterable<number>): void {
    for (const index of indexes) this.add(index);
  }

  has(index: number): boolean {
    const byte = index >> 3;
    return byte < this.#bits.length && (this.#bits[byte]! & (1 << (index & 7))) !== 0;
  }

  /** The chunks marked, in order. */
  indexes(): number[] {
    const found: number[] = [];
    this.#bits.forEach((byte, at) => {
      if (byte === 0) return;
      for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) found.push(at * 8 + bit);
    });
    return found;
  }

  count(): number {
    let count = 0;
    for (const byte of this.#bits) for (let value = byte; value; value &= value - 1) count++;
    return count;
  }
}
