/**
 * Loads a PAR2 recovery set from SET.par2 and its vol files: the main
 * packet, each file's description and slice checksums, and where every
 * intact recovery slice lies. Damaged packets are skipped (each file repeats
 * the critical packets), and what the vol file names promise but is not
 * found is counted, so damaged parity shows.
 */
import { readdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import {
  equalBytes, HEADER_BYTES, hex, PacketType, readFileDescription, readMain, readSliceChecksums, scanPacketFile,
  type FileDescription, type FoundPacket, type MainPacket, type SliceChecksum,
} from "./packets.ts";
import { setBase } from "./write-set.ts";

export interface SetEntry {
  readonly description: FileDescription;
  readonly checksums: readonly SliceChecksum[];
  /** Index of this file's first slice in the set (slices are numbered across files in main-packet order). */
  readonly firstSlice: number;
}

export interface RecoverySliceLocation {
  readonly exponent: number;
  readonly path: string;
  /** Where the slice's data starts in that file. */
  readonly offset: number;
}

export interface RecoverySet {
  readonly setPath: string;
  readonly setId: Uint8Array;
  readonly sliceSize: number;
  readonly entries: readonly SetEntry[];
  readonly inputSlices: number;
  /** One location per exponent, in exponent order. */
  readonly recovery: readonly RecoverySliceLocation[];
  /** The set's files on disk (index and vol files). */
  readonly parFiles: readonly string[];
  /** Recovery slices the vol file names promise that were not found intact. */
  readonly recoveryDamaged: number;
  /**
   * The set's files with damage: bytes in no intact packet, or unreadable.
   * Damage to a packet the set repeats elsewhere (the index's critical
   * packets) costs nothing today but one copy of what repair depends on.
   */
  readonly damagedFiles: readonly string[];
}

export class RecoverySetError extends Error {
  override readonly name = "RecoverySetError";
}

/**
 * The file named and every `BASE.*.par2` next to it. Named by a vol file
 * (`BASE.vol03+04.par2`: the index lost, as par2cmdline allows), the base
 * is the set's, so the other vol files are found too.
 */
export function setFiles(setPath: string): string[] {
  const directory = dirname(setPath);
  const base = basename(setBase(setPath)).replace(/\.vol\d+[+-]\d+$/i, "");
  const others = readdirSync(directory)
    .filter((name) => name !== basename(setPath) && name.startsWith(`${base}.`) && /\.par2$/i.test(name) && !name.startsWith("."))
    .sort()
    .map((name) => join(directory, name));
  return [setPath, ...others];
}

/**
 * A set's file name as a path below the set's directory: sets made on
 * Windows separate directories with `\\`, which is read as `/`. A name
 * that would lead outside (absolute, or through `..`) is refused, so a
 * repair never writes there.
 */
function portableName(description: FileDescription, setPath: string): FileDescription {
  const name = description.name.replace(/\\/g, "/");
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name) || name.split("/").includes("..")) {
    throw new RecoverySetError(`${setPath}: the set names a file outside its directory (${JSON.stringify(description.name)}); refusing to use it`);
  }
  return name === description.name ? description : { ...description, name };
}

export function loadRecoverySet(setPath: string): RecoverySet {
  const parFiles = setFiles(setPath);
  const found: { path: string; packet: FoundPacket }[] = [];
  const damagedFiles: string[] = [];
  for (const path of parFiles) {
    let packets: FoundPacket[];
    try {
      packets = scanPacketFile(path);
    } catch (error) {
      if (path === setPath) throw new RecoverySetError(`${setPath}: cannot read (${(error as Error).message})`);
      damagedFiles.push(path);
      continue;
    }
    for (const packet of packets) found.push({ path, packet });
    // A PAR2 file is packets end to end: bytes no intact packet covers are damage.
    const covered = packets.reduce((sum, packet) => sum + HEADER_BYTES + packet.bodyLength, 0);
    if (covered !== statSync(path).size) damagedFiles.push(path);
  }
  const mains = found.filter((f) => equalBytes(f.packet.type, PacketType.main));
  if (mains.length === 0) throw new RecoverySetError(`${setPath}: no intact main packet in the set's files; not a PAR2 set or too damaged`);
  const preferred = mains.find((m) => m.path === setPath) ?? mains[0];
  const setId = preferred.packet.setId;
  const main: MainPacket = readMain(preferred.packet.body);
  const ofSet = found.filter((f) => equalBytes(f.packet.setId, setId));

  const descriptions = new Map<string, FileDescription>();
  const checksums = new Map<string, SliceChecksum[]>();
  const recovery = new Map<number, RecoverySliceLocation>();
  for (const { path, packet } of ofSet) {
    if (equalBytes(packet.type, PacketType.fileDescription)) {
      const description = portableName(readFileDescription(packet.body), setPath);
      descriptions.set(hex(description.fileId), description);
    } else if (equalBytes(packet.type, PacketType.sliceChecksums)) {
      const read = readSliceChecksums(packet.body);
      checksums.set(hex(read.fileId), read.checksums);
    } else if (equalBytes(packet.type, PacketType.recoverySlice) && packet.bodyLength - 4 === main.sliceSize) {
      const exponent = new DataView(packet.body.buffer, packet.body.byteOffset).getUint32(0, true);
      if (!recovery.has(exponent)) recovery.set(exponent, { exponent, path, offset: packet.bodyOffset + 4 });
    }
  }

  let firstSlice = 0;
  const entries: SetEntry[] = main.fileIds.map((fileId, index) => {
    const key = hex(fileId);
    const description = descriptions.get(key);
    // An empty file has no slices: some creators (ParPar) list one with no checksums packet at all.
    const sums = checksums.get(key) ?? (description?.length === 0 ? [] : undefined);
    if (!description || !sums) throw new RecoverySetError(`${setPath}: the description or checksums of file ${index + 1} of the set are missing or damaged in every copy`);
    if (sums.length !== Math.ceil(description.length / main.sliceSize)) throw new RecoverySetError(`${setPath}: ${description.name} has ${sums.length} slice checksums, expected ${Math.ceil(description.length / main.sliceSize)}`);
    const entry = { description, checksums: sums, firstSlice };
    firstSlice += sums.length;
    return entry;
  });

  let promised = 0;
  for (const path of parFiles) {
    const match = /\.vol(\d+)\+(\d+)\.par2$/i.exec(path);
    if (match) promised += Number(match[2]);
  }
  return {
    setPath,
    setId,
    sliceSize: main.sliceSize,
    entries,
    inputSlices: firstSlice,
    recovery: [...recovery.values()].sort((a, b) => a.exponent - b.exponent),
    parFiles,
    recoveryDamaged: Math.max(0, promised - recovery.size),
    damagedFiles,
  };
}
