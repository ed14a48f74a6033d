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

function header(kind: 0 | 1, length: number): Buffer {
  const head = Buffer.alloc(CHUNK_HEADER_BYTES);
  head.write(CHUNK_MAGIC, 0, "latin1");
  head[4] = CHUNK_FORMAT_VERSION;
  head[5] = kind;
  head.writeBigUInt64LE(BigInt(length), 8);
  return head;
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
  const bytes = Buffer.from(object.buffer, object.byteOffset, object.byteLength);
  if (bytes.length < CHUNK_HEADER_BYTES || bytes.toString("latin1", 0, 4) !== CHUNK_MAGIC) throw new DamagedChunk("not a chunk object (bad header)");
  if (bytes[4] !== CHUNK_FORMAT_VERSION) throw new DamagedChunk(`chunk format ${bytes[4]} is not known to this Blaine`);
  const length = Number(bytes.readBigUInt64LE(8));
  const body = bytes.subarray(CHUNK_HEADER_BYTES);
  let data: Uint8Array;
  if (bytes[5] === 0) data = body;
  else if (bytes[5] === 1) {
    try {
      data = await Bun.zstdDecompress(body);
    } catch (error) {
      throw new DamagedChunk(`zstd: ${error instanceof Error ? error.message : String(error)}`);
    }
  } else throw new DamagedChunk(`unknown compression ${bytes[5]}`);
  if (data.length !== length) throw new DamagedChunk(`holds ${data.length} bytes, its header says ${length}`);
  return data;
}

/** sha256 hex of a block: the name of its chunk. */
export function blockHash(data: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}
