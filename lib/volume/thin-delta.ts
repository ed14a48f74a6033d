import { BlaineError, ExitCode } from "../errors.ts";

/**
 * thin_delta's answer (thin-provisioning-tools, 0.9 and the Rust 1.x alike):
 *
 *   <superblock … data_block_size="128" …>
 *     <diff left="1" right="2">
 *       <same begin="0" length="2"/>
 *       <different begin="2" length="1"/>
 *       <left_only begin="5" length="1"/>
 *       <right_only begin="10" length="1"/>
 *     </diff>
 *   </superblock>
 *
 * `begin` and `length` count the thin volume's blocks of `data_block_size`
 * 512-byte sectors. `different` and `right_only` were written between the
 * two snapshots (changed); `left_only` were discarded (freed: they read as
 * zeros now).
 */
export interface ThinDelta {
  /** Bytes per thin block (data_block_size × 512). */
  readonly blockBytes: number;
  /** [begin, length] in thin blocks. */
  readonly changed: readonly (readonly [number, number])[];
  readonly freed: readonly (readonly [number, number])[];
}

export function parseThinDelta(xml: string, from = "thin_delta"): ThinDelta {
  const superblock = /<superblock\b[^>]*\bdata_block_size="(\d+)"/.exec(xml);
  if (!superblock || !/<diff\b/.test(xml)) throw new BlaineError(`${from}: not thin_delta's XML (no superblock with data_block_size, or no diff)`, ExitCode.failure);
  const sectors = Number(superblock[1]);
  if (!(sectors > 0)) throw new BlaineError(`${from}: data_block_size ${superblock[1]} is not a number of sectors`, ExitCode.failure);
  const changed: [number, number][] = [];
  const freed: [number, number][] = [];
  for (const match of xml.matchAll(/<(same|different|left_only|right_only)\b([^>]*)\/?>/g)) {
    const begin = /\bbegin="(\d+)"/.exec(match[2]!);
    const length = /\blength="(\d+)"/.exec(match[2]!);
    if (!begin || !length) throw new BlaineError(`${from}: <${match[1]}> without begin and length`, ExitCode.failure);
    const range = [Number(begin[1]), Number(length[1])] as [number, number];
    if (match[1] === "different" || match[1] === "right_only") changed.push(range);
    else if (match[1] === "left_only") freed.push(range);
  }
  return { blockBytes: sectors * 512, changed, freed };
}

/**
 * The volume's chunks the delta touches, clamped to the volume's size
 * (thin_delta reports ranges past the end of a volume that shrank): those
 * to read (any byte changed, or only partly freed) and those wholly freed
 * (zeros, not read).
 */
export function chunksOfDelta(delta: ThinDelta, volumeSize: number, chunkSize: number): { read: Set<number>; zero: Set<number> } {
  const read = new Set<number>();
  const freedBytes = new Map<number, number>();
  const clamp = ([begin, length]: readonly [number, number]): [number, number] | undefined => {
    const start = begin * delta.blockBytes;
    const end = Math.min((begin + length) * delta.blockBytes, volumeSize);
    return end > start ? [start, end] : undefined;
  };
  for (const range of delta.changed) {
    const bytes = clamp(range);
    if (!bytes) continue;
    for (let index = Math.floor(bytes[0] / chunkSize); index * chunkSize < bytes[1]; index++) read.add(index);
  }
  for (const range of delta.freed) {
    const bytes = clamp(range);
    if (!bytes) continue;
    for (let index = Math.floor(bytes[0] / chunkSize); index * chunkSize < bytes[1]; index++) {
      const covered = Math.min(bytes[1], (index + 1) * chunkSize) - Math.max(bytes[0], index * chunkSize);
      freedBytes.set(index, (freedBytes.get(index) ?? 0) + covered);
    }
  }
  const zero = new Set<number>();
  for (const [index, bytes] of freedBytes) {
    if (read.has(index)) continue;
    const length = Math.min(chunkSize, volumeSize - index * chunkSize);
    if (bytes >= length) zero.add(index);
    else read.add(index);
  }
  return { read, zero };
}
