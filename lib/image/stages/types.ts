/** The items flowing between the image backup's stages: BlockRef → ReadBlock → PlannedBlock → EncodedBlock. */

/** A block of the source to back up: where it is, and whether the hints already say it is all zeros. */
export interface BlockRef {
  readonly index: number;
  readonly offset: number;
  readonly length: number;
  /** Known zero (a discarded range in the hints): not read. */
  readonly knownZero?: boolean;
  /** Outside the hints, read as the hint sanity check's sample: it must equal the base's block. */
  readonly outsideHints?: boolean;
}

/** A block read and hashed; `hash` null means all zeros (sparse). */
export interface ReadBlock extends BlockRef {
  readonly hash: string | null;
  /** The content; null once it is no longer needed (zeros, or a chunk the store holds). */
  readonly data: Uint8Array | null;
}

/**
 * What becomes of a block: `store` (a chunk the store lacks), `reference` (a
 * chunk the store holds), `sparse` (zeros where the base held data).
 * Blocks equal to the base's, and zeros where the base held none, are not
 * passed on: the version's block list already says so.
 */
export interface PlannedBlock extends ReadBlock {
  readonly action: "store" | "reference" | "sparse";
}

/** A block with its chunk object, ready for the store (`object` only for `store`). */
export interface EncodedBlock extends PlannedBlock {
  readonly object: Uint8Array | null;
  /** Bytes of the chunk object this backup wrote for the block (set by storeChunks). */
  readonly storedSize?: number;
}

/** Byte counts of one backup, as `blaine image backup --json` reports them. */
export class BackupCounts {
  bytesRead = 0;
  bytesWritten = 0;
  bytesDeduplicated = 0;
  bytesSparse = 0;
  /** Bytes read that equal the base's block (--from). */
  bytesUnchanged = 0;
  blocksStored = 0;
}
