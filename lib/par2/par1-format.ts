/**
 * The PAR 1.0 file format (Parity Volume Set specification 1.0): one
 * 96-byte header (magic, version, control hash, set hash, volume number,
 * where the file list and the data lie), a file list (one entry per
 * protected file: status bits, size, MD5 of the whole file and of its first
 * 16 KiB, the name in UTF-16LE) and, in a recovery volume, its one recovery
 * block. Integers are little-endian. The index `SET.par` is volume 0; each
 * `SET.pNN` is volume NN.
 */
import { closeSync, fstatSync, openSync } from "node:fs";
import { equalBytes, md5 } from "./packets.ts";
import { readAt } from "./read-at.ts";

export const PAR1_MAGIC = new Uint8Array([0x50, 0x41, 0x52, 0, 0, 0, 0, 0]);
/** The low double word of the version field: format 1.0. */
export const PAR1_FILE_VERSION = 0x00010000;
export const PAR1_HEADER_BYTES = 0x60;
/** The fixed part of a file entry, before its name. */
export const PAR1_ENTRY_FIXED_BYTES = 0x38;
/** The control hash covers the file from the set hash (this offset) to its end. */
const CONTROL_HASHED_FROM = 0x20;
/** Volume numbers are one byte in every PAR1 creator (par2cmdline refuses more). */
export const PAR1_MAX_VOLUME = 255;
/** par2cmdline's bound on a file list; a larger one is taken for damage. */
const MAX_FILE_LIST_BYTES = 200_000;
/** A 16 KiB hash of every entry is MD5 of this many first bytes. */
export const PAR1_FIRST_BYTES = 16 * 1024;
/**
 * The program identifier of SmartPar 1.1, whose 16 KiB hashes are wrong:
 * par2cmdline ignores them in its sets, and so does Blaine.
 */
const SMARTPAR_1_1 = 0x03000101;

/** Status bit 0: the file's data is in the recovery volumes (else it is only checksummed). */
export const IN_PARITY = 1;

export interface Par1Entry {
  readonly status: number;
  readonly size: number;
  readonly md5: Uint8Array;
  readonly md5First16k: Uint8Array;
  /** The name as stored (a creator may have stored a path: only its last part is used). */
  readonly storedName: string;
  /** The name without any directory, where verify and repair look for the file. */
  readonly name: string;
}

export interface Par1File {
  readonly path: string;
  readonly programVersion: number;
  readonly setHash: Uint8Array;
  readonly volume: number;
  readonly entries: readonly Par1Entry[];
  /** The file list's bytes: every file of one set holds the same. */
  readonly fileList: Uint8Array;
  /** Where the recovery block starts (volumes only) and its length. */
  readonly dataOffset: number;
  readonly dataSize: number;
  /** Whether the set's 16 KiB hashes can be trusted (not a SmartPar 1.1 set). */
  readonly firstHashesValid: boolean;
}

/** Why a file is not a usable PAR1 file: not PAR1 at all, or damaged. */
export class Par1FormatError extends Error {
  override readonly name = "Par1FormatError";
}

/** `.par`, `.PAR` or `.pNN`/`.PNN`: the names par2cmdline takes for PAR 1.0 files. */
export function isPar1Name(name: string): boolean {
  return /\.(par|p\d\d)$/i.test(name);
}

/** The MD5 of the concatenated whole-file MD5s of the files in the parity data, in list order. */
export function par1SetHash(entries: readonly Pick<Par1Entry, "status" | "md5">[]): Uint8Array {
  return md5(...entries.filter((entry) => entry.status & IN_PARITY).map((entry) => entry.md5));
}

function u64(view: DataView, offset: number, what: string, path: string): number {
  const value = view.getBigUint64(offset, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Par1FormatError(`${path}: ${what} is out of range`);
  return Number(value);
}

/** The entries of a file list; a name's last path part (after `/` or `\`) is where the file lives. */
function parseFileList(bytes: Uint8Array, count: number, path: string): Par1Entry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries: Par1Entry[] = [];
  let at = 0;
  while (entries.length < count) {
    if (bytes.length - at < PAR1_ENTRY_FIXED_BYTES) throw new Par1FormatError(`${path}: the file list ends inside entry ${entries.length + 1}`);
    const entryBytes = u64(view, at, "an entry's size", path);
    if (entryBytes <= PAR1_ENTRY_FIXED_BYTES || entryBytes > bytes.length - at) throw new Par1FormatError(`${path}: entry ${entries.length + 1} has an impossible size`);
    const nameBytes = bytes.subarray(at + PAR1_ENTRY_FIXED_BYTES, at + entryBytes - ((entryBytes - PAR1_ENTRY_FIXED_BYTES) % 2));
    const storedName = new TextDecoder("utf-16le").decode(nameBytes).replace(/\0+$/, "");
    const name = storedName.slice(Math.max(storedName.lastIndexOf("/"), storedName.lastIndexOf("\\")) + 1);
    if (name === "" || name === "." || name === "..") throw new Par1FormatError(`${path}: entry ${entries.length + 1} has no usable file name (${JSON.stringify(storedName)})`);
    entries.push({
      status: Number(view.getBigUint64(at + 8, true) & 0xffffffffn),
      size: u64(view, at + 16, "a file size", path),
      md5: bytes.slice(at + 24, at + 40),
      md5First16k: bytes.slice(at + 40, at + 56),
      storedName,
      name,
    });
    at += entryBytes;
  }
  return entries;
}

/**
 * Reads and checks one PAR1 file as par2cmdline does: magic, version, the
 * control hash over the whole file, a volume number below 256, a file list
 * and data that lie inside the file and do not overlap. Throws
 * Par1FormatError for anything else (a damaged file is not used).
 */
export function readPar1File(path: string): Par1File {
  const fd = openSync(path, "r");
  try {
    const length = fstatSync(fd).size;
    if (length < PAR1_HEADER_BYTES) throw new Par1FormatError(`${path}: too short for a PAR1 header`);
    const header = new Uint8Array(PAR1_HEADER_BYTES);
    readAt(fd, header, PAR1_HEADER_BYTES, 0);
    if (!equalBytes(header.subarray(0, 8), PAR1_MAGIC)) throw new Par1FormatError(`${path}: not a PAR 1.0 file`);
    const view = new DataView(header.buffer);
    if (view.getUint32(8, true) !== PAR1_FILE_VERSION) throw new Par1FormatError(`${path}: not PAR format version 1.0`);
    const hasher = new Bun.CryptoHasher("md5");
    const buffer = new Uint8Array(Math.min(1 << 20, length));
    for (let offset = CONTROL_HASHED_FROM; offset < length; ) {
      const got = readAt(fd, buffer, Math.min(buffer.length, length - offset), offset);
      if (got === 0) break;
      hasher.update(buffer.subarray(0, got));
      offset += got;
    }
    if (!equalBytes(new Uint8Array(hasher.digest().buffer), header.subarray(0x10, 0x20))) throw new Par1FormatError(`${path}: damaged (its control hash does not match)`);
    const volume = u64(view, 0x30, "the volume number", path);
    const fileCount = u64(view, 0x38, "the file count", path);
    const listOffset = u64(view, 0x40, "the file list offset", path);
    const listSize = u64(view, 0x48, "the file list size", path);
    const dataOffset = u64(view, 0x50, "the data offset", path);
    const dataSize = u64(view, 0x58, "the data size", path);
    if (volume > PAR1_MAX_VOLUME) throw new Par1FormatError(`${path}: volume number ${volume} is above ${PAR1_MAX_VOLUME}`);
    if (fileCount === 0 || listSize === 0 || listOffset < PAR1_HEADER_BYTES || listOffset + listSize > length || listSize > MAX_FILE_LIST_BYTES) {
      throw new Par1FormatError(`${path}: its file list is missing or lies outside the file`);
    }
    if (dataSize > 0 && (dataOffset < PAR1_HEADER_BYTES || dataOffset + dataSize > length || (dataOffset < listOffset + listSize && listOffset < dataOffset + dataSize))) {
      throw new Par1FormatError(`${path}: its recovery data lies outside the file or over the file list`);
    }
    const fileList = new Uint8Array(listSize);
    readAt(fd, fileList, listSize, listOffset);
    const programVersion = view.getUint32(12, true);
    return {
      path,
      programVersion,
      setHash: header.slice(0x20, 0x30),
      volume,
      entries: parseFileList(fileList, fileCount, path),
      fileList,
      dataOffset,
      dataSize,
      firstHashesValid: programVersion !== SMARTPAR_1_1,
    };
  } finally {
    closeSync(fd);
  }
}

export interface Par1EntryToWrite {
  readonly name: string;
  readonly size: number;
  readonly md5: Uint8Array;
  readonly md5First16k: Uint8Array;
  /** Default: in the parity data. */
  readonly status?: number;
}

/** A file list's bytes, entries in the order given. */
export function par1FileList(entries: readonly Par1EntryToWrite[]): Uint8Array {
  const parts = entries.map((entry) => {
    const name = Buffer.from(entry.name, "utf16le");
    const bytes = new Uint8Array(PAR1_ENTRY_FIXED_BYTES + name.length);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, BigInt(bytes.length), true);
    view.setBigUint64(8, BigInt(entry.status ?? IN_PARITY), true);
    view.setBigUint64(16, BigInt(entry.size), true);
    bytes.set(entry.md5, 24);
    bytes.set(entry.md5First16k, 40);
    bytes.set(name, PAR1_ENTRY_FIXED_BYTES);
    return bytes;
  });
  const list = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    list.set(part, at);
    at += part.length;
  }
  return list;
}

/**
 * One whole PAR1 file: header, file list, then `data` (a volume's recovery
 * block; none for the index, volume 0). `programVersion` is the creator's
 * identifier (the high double word of the version field).
 */
export function par1FileBytes(options: {
  readonly entries: readonly Par1EntryToWrite[];
  readonly volume: number;
  readonly data?: Uint8Array;
  readonly programVersion: number;
}): Uint8Array {
  const list = par1FileList(options.entries);
  const data = options.data ?? new Uint8Array(0);
  const bytes = new Uint8Array(PAR1_HEADER_BYTES + list.length + data.length);
  const view = new DataView(bytes.buffer);
  bytes.set(PAR1_MAGIC, 0);
  view.setUint32(8, PAR1_FILE_VERSION, true);
  view.setUint32(12, options.programVersion, true);
  bytes.set(par1SetHash(options.entries.map((entry) => ({ status: entry.status ?? IN_PARITY, md5: entry.md5 }))), 0x20);
  view.setBigUint64(0x30, BigInt(options.volume), true);
  view.setBigUint64(0x38, BigInt(options.entries.length), true);
  view.setBigUint64(0x40, BigInt(PAR1_HEADER_BYTES), true);
  view.setBigUint64(0x48, BigInt(list.length), true);
  view.setBigUint64(0x50, BigInt(data.length > 0 ? PAR1_HEADER_BYTES + list.length : 0), true);
  view.setBigUint64(0x58, BigInt(data.length), true);
  bytes.set(list, PAR1_HEADER_BYTES);
  bytes.set(data, PAR1_HEADER_BYTES + list.length);
  bytes.set(md5(bytes.subarray(CONTROL_HASHED_FROM)), 0x10);
  return bytes;
}
