/**
 * PAR2 2.0 packets: layout, serialisation and parsing. Every packet is a
 * 64-byte header (magic, length, MD5 of the rest from the set ID on, set ID,
 * type) and a body padded to a multiple of 4; integers are little-endian.
 */
import { closeSync, fstatSync, openSync } from "node:fs";
import { readSalvaging, type ByteRange } from "../fs/salvage-read.ts";
import { SCRATCH_READ, scratchBuffer } from "./scratch.ts";

export const MAGIC = new TextEncoder().encode("PAR2\0PKT");
export const HEADER_BYTES = 64;

function typeId(text: string): Uint8Array {
  const bytes = new Uint8Array(16);
  bytes.set(new TextEncoder().encode(text));
  return bytes;
}

export const PacketType = {
  main: typeId("PAR 2.0\0Main"),
  fileDescription: typeId("PAR 2.0\0FileDesc"),
  sliceChecksums: typeId("PAR 2.0\0IFSC"),
  recoverySlice: typeId("PAR 2.0\0RecvSlic"),
  creator: typeId("PAR 2.0\0Creator"),
} as const;

export function md5(...parts: Uint8Array[]): Uint8Array {
  const hasher = new Bun.CryptoHasher("md5");
  for (const part of parts) hasher.update(part);
  return new Uint8Array(hasher.digest().buffer);
}

/**
 * Feeds `count` zero bytes to an MD5 and a CRC32 (`crc` so far), `zeros`
 * (all zero) at a time, and returns the CRC32: a slice's zero padding, which
 * may be tens of megabytes. The CRC is not finalised (`>>> 0`).
 */
export function hashZeros(hasher: Bun.CryptoHasher, crc: number, count: number, zeros: Uint8Array): number {
  for (let left = count; left > 0; left -= zeros.length) {
    const step = zeros.subarray(0, Math.min(left, zeros.length));
    hasher.update(step);
    crc = Bun.hash.crc32(step, crc);
  }
  return crc;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function padTo4(length: number): number {
  return Math.ceil(length / 4) * 4;
}

/**
 * A packet as chunks to write: the header and body prefix in one buffer, the
 * bulk (a recovery slice) separate so it is never copied.
 */
export function packet(setId: Uint8Array, type: Uint8Array, body: Uint8Array, bulk?: Uint8Array): Uint8Array[] {
  const bodyLength = padTo4(body.length + (bulk?.length ?? 0));
  if (bulk && body.length % 4 !== 0) throw new RangeError("packet body prefix must be a multiple of 4 bytes before bulk data");
  const head = new Uint8Array(HEADER_BYTES + (bulk ? body.length : bodyLength));
  const view = new DataView(head.buffer);
  head.set(MAGIC, 0);
  view.setBigUint64(8, BigInt(HEADER_BYTES + bodyLength), true);
  head.set(setId, 32);
  head.set(type, 48);
  head.set(body, HEADER_BYTES);
  const tail = bulk && bulk.length % 4 !== 0 ? new Uint8Array(4 - (bulk.length % 4)) : undefined;
  const hashed = [head.subarray(32), ...(bulk ? [bulk] : []), ...(tail ? [tail] : [])];
  head.set(md5(...hashed), 16);
  return [head, ...(bulk ? [bulk] : []), ...(tail ? [tail] : [])];
}

/**
 * The 64-byte header of a packet whose body is written elsewhere (a recovery
 * slice written range by range): `hash` is the MD5 of everything from the
 * set ID on, which the writer computed as the body went out.
 */
export function packetHeader(setId: Uint8Array, type: Uint8Array, bodyLength: number, hash: Uint8Array): Uint8Array {
  if (bodyLength % 4 !== 0) throw new RangeError("packet body length must be a multiple of 4 bytes");
  const head = new Uint8Array(HEADER_BYTES);
  head.set(MAGIC, 0);
  new DataView(head.buffer).setBigUint64(8, BigInt(HEADER_BYTES + bodyLength), true);
  head.set(hash, 16);
  head.set(setId, 32);
  head.set(type, 48);
  return head;
}

export interface MainPacket {
  readonly sliceSize: number;
  /** File IDs of the recovery set, in the order that numbers their slices. */
  readonly fileIds: readonly Uint8Array[];
  readonly nonRecoveryFileIds: readonly Uint8Array[];
}

export function mainBody(main: MainPacket): Uint8Array {
  const body = new Uint8Array(12 + 16 * (main.fileIds.length + main.nonRecoveryFileIds.length));
  const view = new DataView(body.buffer);
  view.setBigUint64(0, BigInt(main.sliceSize), true);
  view.setUint32(8, main.fileIds.length, true);
  [...main.fileIds, ...main.nonRecoveryFileIds].forEach((id, i) => body.set(id, 12 + 16 * i));
  return body;
}

export interface FileDescription {
  readonly fileId: Uint8Array;
  readonly md5: Uint8Array;
  /** MD5 of the first 16 KiB (the whole file when shorter). */
  readonly md5First16k: Uint8Array;
  readonly length: number;
  readonly name: string;
}

/** The spec's file ID: MD5 of the 16k hash, the length (8 bytes) and the name (unpadded). */
export function fileIdOf(md5First16k: Uint8Array, length: number, name: string): Uint8Array {
  const lengthBytes = new Uint8Array(8);
  new DataView(lengthBytes.buffer).setBigUint64(0, BigInt(length), true);
  return md5(md5First16k, lengthBytes, new TextEncoder().encode(name));
}

export function fileDescriptionBody(file: FileDescription): Uint8Array {
  const name = new TextEncoder().encode(file.name);
  const body = new Uint8Array(56 + padTo4(name.length));
  body.set(file.fileId, 0);
  body.set(file.md5, 16);
  body.set(file.md5First16k, 32);
  new DataView(body.buffer).setBigUint64(48, BigInt(file.length), true);
  body.set(name, 56);
  return body;
}

export interface SliceChecksum {
  readonly md5: Uint8Array;
  readonly crc32: number;
}

export function sliceChecksumsBody(fileId: Uint8Array, checksums: readonly SliceChecksum[]): Uint8Array {
  const body = new Uint8Array(16 + 20 * checksums.length);
  const view = new DataView(body.buffer);
  body.set(fileId, 0);
  checksums.forEach((checksum, i) => {
    body.set(checksum.md5, 16 + 20 * i);
    view.setUint32(32 + 20 * i, checksum.crc32, true);
  });
  return body;
}

export function recoveryPrefix(exponent: number): Uint8Array {
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, exponent, true);
  return prefix;
}

export function creatorBody(client: string): Uint8Array {
  const text = new TextEncoder().encode(client);
  const body = new Uint8Array(padTo4(text.length));
  body.set(text);
  return body;
}

/** A packet found in a file whose MD5 checked out. */
export interface FoundPacket {
  readonly setId: Uint8Array;
  readonly type: Uint8Array;
  /** Where the body starts in the file, and its length. */
  readonly bodyOffset: number;
  readonly bodyLength: number;
  /** The body, except for recovery slices (only their 4-byte exponent). */
  readonly body: Uint8Array;
}

/**
 * Every intact packet in a PAR2 file, read through a file descriptor: the
 * small packets whole, recovery slices streamed through MD5 and not kept,
 * so checking the parity of a huge file does not hold it in memory. Bytes
 * the storage refuses (EIO: a bad sector, an encrypted disk's damaged
 * block) read as zeros: the packets in them fail their MD5, the others count.
 */
export function scanPacketFile(path: string): FoundPacket[] {
  const fd = openSync(path, "r");
  const refused: ByteRange[] = [];
  const readAround = (into: Uint8Array, length: number, position: number) => readSalvaging(fd, into, length, position, refused);
  try {
    const size = fstatSync(fd).size;
    const found: FoundPacket[] = [];
    const header = new Uint8Array(HEADER_BYTES);
    const view = new DataView(header.buffer);
    const chunk = scratchBuffer(SCRATCH_READ);
    /** The next magic at or after `from` (-1: none): usually right there, else searched for chunk by chunk. */
    const nextMagic = (from: number): number => {
      if (readAround(header, MAGIC.length, from) === MAGIC.length && equalBytes(header.subarray(0, MAGIC.length), MAGIC)) return from;
      for (let at = from; at < size; at += chunk.length - MAGIC.length) {
        const got = readAround(chunk, Math.min(chunk.length, size - at), at);
        const index = Buffer.from(chunk.buffer, 0, got).indexOf(Buffer.from(MAGIC));
        if (index >= 0) return at + index;
        if (got < chunk.length) return -1;
      }
      return -1;
    };
    let at = 0;
    while (at + HEADER_BYTES <= size) {
      const start = nextMagic(at);
      if (start < 0 || start + HEADER_BYTES > size) break;
      readAround(header, HEADER_BYTES, start);
      const length = Number(view.getBigUint64(8, true));
      if (length < HEADER_BYTES || length % 4 !== 0 || start + length > size) {
        at = start + 8;
        continue;
      }
      const type = header.slice(48, 64);
      const isRecovery = equalBytes(type, PacketType.recoverySlice);
      const hasher = new Bun.CryptoHasher("md5");
      hasher.update(header.subarray(32));
      let body: Uint8Array;
      if (isRecovery) {
        body = new Uint8Array(4);
        for (let position = start + HEADER_BYTES; position < start + length; ) {
          const got = readAround(chunk, Math.min(chunk.length, start + length - position), position);
          if (position === start + HEADER_BYTES) body.set(chunk.subarray(0, 4));
          hasher.update(chunk.subarray(0, got));
          position += got;
        }
      } else {
        body = new Uint8Array(length - HEADER_BYTES);
        readAround(body, body.length, start + HEADER_BYTES);
        hasher.update(body);
      }
      if (!equalBytes(new Uint8Array(hasher.digest().buffer), header.subarray(16, 32))) {
        at = start + 8;
        continue;
      }
      found.push({ setId: header.slice(32, 48), type, bodyOffset: start + HEADER_BYTES, bodyLength: length - HEADER_BYTES, body });
      at = start + length;
    }
    return found;
  } finally {
    closeSync(fd);
  }
}

export function readMain(body: Uint8Array): MainPacket {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const sliceSize = Number(view.getBigUint64(0, true));
  const recoveryCount = view.getUint32(8, true);
  const ids: Uint8Array[] = [];
  for (let at = 12; at + 16 <= body.length; at += 16) ids.push(body.slice(at, at + 16));
  return { sliceSize, fileIds: ids.slice(0, recoveryCount), nonRecoveryFileIds: ids.slice(recoveryCount) };
}

export function readFileDescription(body: Uint8Array): FileDescription {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let end = body.length;
  while (end > 56 && body[end - 1] === 0) end--;
  return {
    fileId: body.slice(0, 16),
    md5: body.slice(16, 32),
    md5First16k: body.slice(32, 48),
    length: Number(view.getBigUint64(48, true)),
    name: new TextDecoder().decode(body.subarray(56, end)),
  };
}

export function readSliceChecksums(body: Uint8Array): { fileId: Uint8Array; checksums: SliceChecksum[] } {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const checksums: SliceChecksum[] = [];
  for (let at = 16; at + 20 <= body.length; at += 20) checksums.push({ md5: body.slice(at, at + 16), crc32: view.getUint32(at + 16, true) });
  return { fileId: body.slice(0, 16), checksums };
}
