/**
 * The PAR2 recovery sets on one archive disk, one set per content:
 * `.blaine/parity/<first two hex digits>/<algorithm>-<hex>.par2` and one vol
 * file beside it. Keyed by the content hash, so renames, moves and hardlinks
 * of the data never need new parity. Files are written atomically (temp,
 * rename; the vol file before the index, so an index means a whole set) but
 * not fsynced one by one: the caller syncs the file system once before
 * recording sets in the catalog.
 */
import { existsSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { chooseSliceSize, MIN_AUTO_SLICE_SIZE, recoveryCountFor } from "../../par2/sizing.ts";
import { createWithExternalEngine, type ExternalParityEngine } from "../../system/par2-tools.ts";
import { UsageError } from "../../errors.ts";
import { fsPath } from "../../fs/byte-names.ts";
import { allocatedBytes, looksSparse } from "../../fs/sparse.ts";
import type { FileChecksums } from "../../copy/digest-ring.ts";
import { BLAINE_DIR } from "./layout.ts";

export type ParityEngine = "builtin" | ExternalParityEngine;
export const PARITY_ENGINES: readonly ParityEngine[] = ["builtin", "parpar", "par2"];

export interface ParityPolicy {
  /** Recovery slices as a percentage of the input slices. */
  readonly percent: number;
  readonly engine: ParityEngine;
}

/**
 * Input slices per set. The products cost size × recovery slices: with 10 %
 * parity, 200 slices give 20 recovery slices, 2.2 CPU seconds per GiB here
 * (the two MD5s PAR2 needs take 3.4), where 500 took 5.5 and kept a run of
 * one large file under 200 MB/s on two cores. What fewer slices give up is
 * the number of separate damaged places a set repairs (20 instead of 50:
 * each bad sector spoils its slice); a damaged run of bytes is repaired up
 * to the same 10 % of the file either way. par2cmdline's 2000 would be 10×
 * slower.
 */
export const PARITY_BLOCK_COUNT = 200;

/**
 * The sizes of the files of the set made for one content of `size` bytes,
 * `dataBytes` of them allocated (the index, then the vol file), so a run
 * can reserve their room before the content is copied: every recovery slice
 * with its packet header, and the main, file description, slice checksum
 * and creator packets in both files.
 */
export function paritySetFileSizes(size: number, percent: number, nameBytes: number, dataBytes = size): number[] {
  if (size === 0 || !(percent > 0)) return [];
  const sliceSize = paritySliceSize(size);
  const slices = Math.ceil(size / sliceSize);
  // A sparse file's recovery slices are a percentage of the slices holding data (see create).
  const recovery = recoveryCountFor(Math.ceil(Math.min(dataBytes, size) / sliceSize), percent);
  const critical = 92 + 120 + Math.ceil(nameBytes / 4) * 4 + 80 + 20 * slices + 128;
  return [critical, critical + recovery * (68 + sliceSize)];
}

const SIZING = { blockCount: PARITY_BLOCK_COUNT, minSliceSize: MIN_AUTO_SLICE_SIZE } as const;

/** The slice size of the set made for a content of `size` bytes (a run's copy computes the slices' checksums as it copies). */
export function paritySliceSize(size: number): number {
  return chooseSliceSize([size], SIZING);
}

/** What ParityStore.create may be given besides the data. */
export interface CreateSetOptions {
  readonly signal?: AbortSignal;
  /** Data bytes through the encoder as they go (the built-in engine; an external one reports the whole file at its end). */
  readonly onProgress?: (bytes: number) => void;
  /** The data's checksums, computed while it was copied (the built-in engine then reads it only for the recovery slices). */
  readonly checksums?: FileChecksums;
}

export interface StoredSet {
  readonly sliceSize: number;
  readonly recoverySlices: number;
  readonly files: number;
  readonly bytes: number;
}

let scratchCounter = 0;

export class ParityStore {
  readonly dir: string;
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
    this.dir = join(root, BLAINE_DIR, "parity");
  }

  /** `sha1:ab12…` → `.blaine/parity/ab/sha1-ab12…` (every file of the set starts with this). */
  base(hash: string): string {
    const [algorithm, hex] = hash.split(":");
    if (!algorithm || !hex || !/^[0-9a-f]+$/.test(hex)) throw new Error(`not a content hash: ${hash}`);
    return join(this.dir, hex.slice(0, 2), `${algorithm}-${hex}`);
  }

  indexPath(hash: string): string {
    return `${this.base(hash)}.par2`;
  }

  /** The set's files that exist now (index and vol files). */
  filesOf(hash: string): string[] {
    const base = this.base(hash);
    const directory = dirname(base);
    const prefix = `${basename(base)}.`;
    let names: string[];
    try {
      names = readdirSync(directory);
    } catch {
      return [];
    }
    return names.filter((name) => name.startsWith(prefix) && name.endsWith(".par2")).map((name) => join(directory, name));
  }

  /** Writes the set of `hash` from `dataPath`, whose archived name is `name`; replaces any partial set left before. */
  async create(hash: string, dataPath: string, name: string, policy: ParityPolicy, options: CreateSetOptions = {}): Promise<StoredSet> {
    try {
      return await this.#create(hash, dataPath, name, policy, options);
    } catch (error) {
      // Half a set (the vol file in place, the index not: ENOSPC) is no protection and only takes room.
      this.remove(hash);
      throw error;
    }
  }

  async #create(hash: string, dataPath: string, name: string, policy: ParityPolicy, options: CreateSetOptions): Promise<StoredSet> {
    const { signal, onProgress } = options;
    this.remove(hash);
    const base = this.base(hash);
    mkdirSync(dirname(base), { recursive: true });
    const stats = statSync(fsPath(dataPath));
    const size = stats.size;
    const sliceSize = paritySliceSize(size);
    // A sparse file's set is a standard one, but its recovery slices are a
    // percentage of the slices holding data, not of the holes (zero slices):
    // a 1 GiB file holding 4 KB gets one recovery slice, not a hundred MB.
    const dataBytes = looksSparse(stats) ? allocatedBytes(stats) : size;
    const recoverySlices = recoveryCountFor(Math.ceil(dataBytes / sliceSize), policy.percent);
    if (policy.engine === "builtin") {
      // The engine loads when a set is first made or read: most runs make none (a tenth of an unchanged re-run).
      const { createRecoverySet } = await import("../../par2/create.ts");
      const created = await createRecoverySet(`${base}.par2`, {
        files: [{ path: dataPath, name, checksums: options.checksums }], redundancy: policy.percent, recoveryCount: dataBytes < size ? recoverySlices : undefined,
        recoveryFileCount: 1, sync: false, replace: true, signal, onProgress, ...SIZING,
      });
      return { sliceSize: created.sliceSize, recoverySlices: created.recoveryCount, files: created.paths.length, bytes: created.bytes };
    }
    const scratch = join(this.#root, BLAINE_DIR, "tmp", `parity-${process.pid}-${scratchCounter++}`);
    mkdirSync(scratch, { recursive: true });
    try {
      linkSync(fsPath(dataPath), join(scratch, name));
      const setName = `${basename(base)}.par2`;
      await createWithExternalEngine(policy.engine, { dir: scratch, fileName: name, setName, sliceSize, recoverySlices });
      onProgress?.(size);
      const made = readdirSync(scratch).filter((file) => file.endsWith(".par2"));
      const ordered = [...made.filter((file) => file !== setName), setName];
      let bytes = 0;
      for (const file of ordered) {
        bytes += statSync(join(scratch, file)).size;
        renameSync(join(scratch, file), join(dirname(base), file));
      }
      return { sliceSize, recoverySlices, files: ordered.length, bytes };
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }

  /**
   * The set of `hash` if it is whole: every packet of its index and vol
   * files is intact (so are the recovery slices the vol file names promise),
   * and it describes one file of `size`.
   */
  check(hash: string, size: number): StoredSet | undefined {
    const index = this.indexPath(hash);
    if (!existsSync(index)) return undefined;
    try {
      const { loadRecoverySet } = require("../../par2/recovery-set.ts") as typeof import("../../par2/recovery-set.ts");
      const set = loadRecoverySet(index);
      if (set.entries.length !== 1 || set.entries[0].description.length !== size) return undefined;
      if (set.recovery.length === 0 || set.recoveryDamaged > 0 || set.damagedFiles.length > 0) return undefined;
      const bytes = set.parFiles.reduce((sum, path) => sum + statSync(path).size, 0);
      return { sliceSize: set.sliceSize, recoverySlices: set.recovery.length, files: set.parFiles.length, bytes };
    } catch {
      return undefined;
    }
  }

  remove(hash: string): void {
    for (const path of this.filesOf(hash)) rmSync(path, { force: true });
  }

  /**
   * Every content hash with files in the store (for sweeping sets whose
   * content is gone). Removes on the way the temp files of set writes a
   * killed run left (only the run holding the lock calls this, once its
   * parity stage is done), so the store is walked once per run.
   */
  sweep(): Set<string> {
    const hashes = new Set<string>();
    let shards: string[];
    try {
      shards = readdirSync(this.dir);
    } catch {
      return hashes;
    }
    for (const shard of shards) {
      let names: string[];
      try {
        names = readdirSync(join(this.dir, shard));
      } catch {
        continue;
      }
      for (const name of names) {
        if (name.startsWith(".") && name.endsWith(".tmp")) {
          rmSync(join(this.dir, shard, name), { force: true });
          continue;
        }
        const match = /^([a-z0-9]+)-([0-9a-f]+)\./.exec(name);
        if (match && name.endsWith(".par2")) hashes.add(`${match[1]}:${match[2]}`);
      }
    }
    return hashes;
  }
}

/** `--parity`: `10`, `10%` or `off` (also `false`/`0` in blaine.toml); default 10 %. Undefined means off. */
export function parseParityPercent(value: unknown): number | undefined {
  if (value === undefined || value === null) return 10;
  if (value === false) return undefined;
  const text = String(value).trim().toLowerCase();
  if (text === "off" || text === "none" || text === "false") return undefined;
  const match = /^(\d+(?:\.\d+)?)%?$/.exec(text);
  if (!match) throw new UsageError(`--parity: "${String(value)}" is not a percentage (like 10 or 10%) or off`);
  const percent = Number(match[1]);
  if (percent > 1000) throw new UsageError(`--parity: ${percent}% is more recovery data than PAR2 can hold usefully (at most 1000%)`);
  return percent === 0 ? undefined : percent;
}

export function parseParityEngine(value: unknown): ParityEngine {
  const engine = String(value ?? "builtin");
  if (!PARITY_ENGINES.includes(engine as ParityEngine)) throw new UsageError(`--parity-engine: "${engine}" is not one of ${PARITY_ENGINES.join(", ")}`);
  return engine as ParityEngine;
}
