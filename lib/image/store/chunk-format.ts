import { BlaineError } from "../../errors.ts";

/**
 * A chunk object: one distinct block, named by the sha256 of its
 * uncompressed content, with a 16-byte header that says how to read it
 * without any catalog:
 *
 *   bytes 0–3   "BLCK"
 *   byte  4     format version (1)
 *   byte  5     compression: 0 none, 1 zstd
 *   bytes 6–7   0
 *   bytes 8–15  uncompressed length, u64 little-endian
 *
 * followed by the (compressed) content. zstd frames are the zstd CLI's, so
 * `tail -c +17 CHUNK | zstd -d` reads one by hand.
 */
export const CHUNK_MAGIC = "BLCK";
export const CHUNK_FORMAT_VERSION = 1;
export const CHUNK_HEADER_BYTES = 16;

export type Compression = { readonly kind: "none" } | { readonly kind: "zstd"; readonly level: number };

/** `--compress zstd:LEVEL|none` (zstd alone is level 3). */
export function parseCompression(text: string): Compression {
  if (text === "none") return { kind: "none" };
  const match = /^zstd(?::(\d+))?$/.exec(text);
  const level = match ? Number(match[1] ?? 3) : NaN;
  if (!match || level < 1 || level > 22) throw new BlaineError(`--compress: "${text}" is not zstd:LEVEL (1–22) or none`, 2);
  return { kind: "zstd", level };
}

export function formatCompression(compression: Compression): string {
  return compression.kind === "none" ? "none" : `zstd:${compression.level}`;
}

/** Writes a chunk header at the start of `into`: compression `kind` (0 none, 1 zstd), uncompressed `length`. */
export function writeChunkHeader(into: Buffer, kind: 0 | 1, length: number): void {
  into.write(CHUNK_MAGIC, 0, "latin1");
  into[4] = CHUNK_FORMAT_VERSION;
  into[5] = kind;
  into[6] = 0;
  into[7] = 0;
  into.writeBigUInt64LE(BigInt(length), 8);
}

function header(kind: 0 | 1, length: number): Buffer {
  const head = Buffer.alloc(CHUNK_HEADER_BYTES);
  writeChunkHeader(head, kind, length);
  return head;
}

/** A chunk object's header read: compression kind and uncompressed length (DamagedChunk when it is not one). */
export function readChunkHeader(object: Uint8Array): { kind: number; length: number } {
  const bytes = Buffer.from(object.buffer, object.byteOffset, object.byteLength);
  if (bytes.length < CHUNK_HEADER_BYTES || bytes.toString("latin1", 0, 4) !== CHUNK_MAGIC) throw new DamagedChunk("not a chunk object (bad header)");
  if (bytes[4] !== CHUNK_FORMAT_VERSION) throw new DamagedChunk(`chunk format ${bytes[4]} is not known to this Blaine`);
  if (bytes[5] !== 0 && bytes[5] !== 1) throw new DamagedChunk(`unknown compression ${bytes[5]}`);
  return { kind: bytes[5], length: Number(bytes.readBigUInt64LE(8)) };
}

/**
 * The object for a block. Compressed on Bun's I/O threads; stored as it is
 * when compression does not make it smaller (random data).
 */
export async function encodeChunk(data: Uint8Array, compression: Compression): Promise<Uint8Array> {
  if (compression.kind === "zstd") {
    const packed = await Bun.zstdCompress(data, { level: compression.level });
    if (packed.length < data.length) return Buffer.concat([header(1, data.length), packed]);
  }
  return Buffer.concat([header(0, data.length), data]);
}

/** A chunk object that cannot be read back: bad header, bad compression, wrong length. */
export class DamagedChunk extends Error {}

/** The block an object holds (its hash is the caller's to check). */
export async function decodeChunk(object: Uint8Array): Promise<Uint8Array> {
  const { kind, length } = readChunkHeader(object);
  const body = object.subarray(CHUNK_HEADER_BYTES);
  let data: Uint8Array;
  if (kind === 0) data = body;
  else {
    try {
      data = await Bun.zstdDecompress(body);
    } catch (error) {
      throw new DamagedChunk(`zstd: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (data.length !== length) throw new DamagedChunk(`holds ${data.length} bytes, its header says ${length}`);
  return data;
}

/**
 * Whether a block is all zeros: its first byte zero and every byte equal to
 * the next (memcmp of the block against itself one byte on, so memcmp speed
 * without a buffer of zeros as long as the block: a fresh one cost a
 * thread 1 024 page faults, some 15 ms of CPU in this VM, on its first block).
 */
export function isZero(data: Uint8Array): boolean {
  if (data.length === 0) return true;
  if (data[0] !== 0) return false;
  return Buffer.compare(data.subarray(1), data.subarray(0, data.length - 1)) === 0;
}

/** sha256 hex of a block: the name of its chunk. */
export function blockHash(data: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

/** A block's hash as a version records it: null for all zeros (no chunk holds them), else its chunk's name. */
export function blockHashOrZero(data: Uint8Array): string | null {
  return isZero(data) ? null : blockHash(data);
}
