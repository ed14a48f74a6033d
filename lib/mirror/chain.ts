import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BlaineError, ExitCode, errnoCode, errorMessage } from "../errors.ts";
import { writeFileAtomic } from "../fs/atomic.ts";
import { mountKernel, unmountKernel, type KernelMountOptions } from "../system/block-mount.ts";
import { cifsCredentialsFile, mountCifs, type CifsShare } from "../system/cifs.ts";
import { luksClose, luksOpen } from "../system/cryptsetup.ts";
import { mountAt, unmountFuse, waitUntilMounted } from "../system/fuse-mount.ts";
import { gocryptfs } from "../system/gocryptfs.ts";
import { attachLoop, detachLoop, loopsBackedBy } from "../system/loop-device.ts";
import { processStart, runDirectory } from "../system/mount-records.ts";

/**
 * A mirror's chain of mounts (remote → loop device → LUKS → btrfs →
 * gocryptfs), taken down in reverse order on every exit path. Each step is
 * written to a record under /run/blaine/mirror (0700) *before* it is taken,
 * so a run killed at any moment leaves a record the next mirror command
 * finds: then the steps still in place are undone (undoing a step that was
 * never taken does nothing).
 */
export type ChainStep =
  | { readonly kind: "mount"; readonly target: string; readonly fuse: boolean }
  | { readonly kind: "loop"; readonly file: string }
  | { readonly kind: "luks"; readonly name: string }
  | { readonly kind: "dir"; readonly path: string };

export interface ChainRecord {
  readonly id: string;
  /** The configuration file whose store the chain opens. */
  readonly config: string;
  /** "command": held for one command's duration; "browse": left mounted by `blaine mirror mount`. */
  readonly purpose: "command" | "browse";
  readonly pid: number;
  readonly pidStart: string;
  /** Where `blaine mirror mount` shows the store. */
  readonly mountpoint?: string;
  /** A browse chain is complete once everything is mounted; before that, its killed owner leaves it stale. */
  readonly complete: boolean;
  readonly steps: readonly ChainStep[];
}

export function chainDirectory(): string {
  return join(runDirectory(), "mirror");
}

function ensureChainDirectory(): string {
  const dir = chainDirectory();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export function readChainRecords(): ChainRecord[] {
  const dir = chainDirectory();
  if (!existsSync(dir)) return [];
  const records: ChainRecord[] = [];
  for (const entry of readdirSync(dir)) {
    if (!entry.endsWith(".json")) continue;
    try {
      records.push(JSON.parse(readFileSync(join(dir, entry), "utf8")) as ChainRecord);
    } catch {
      // Being renamed into place right now: its owner is alive.
    }
  }
  return records;
}

function ownerAlive(record: ChainRecord): boolean {
  return processStart(record.pid) === record.pidStart;
}

/** Undoes one step if it is still in place. */
async function undoStep(step: ChainStep): Promise<void> {
  switch (step.kind) {
    case "mount":
      if (!mountAt(step.target)) return;
      if (step.fuse) await unmountFuse(step.target, { lazy: true });
      else await unmountKernel(step.target, { lazy: true });
      return;
    case "loop":
      for (const device of loopsBackedBy(step.file)) await detachLoop(device, step.file);
      return;
    case "luks":
      await luksClose(step.name);
      return;
    case "dir":
      // A run killed while mount.cifs read its credentials left the password on disk here.
      rmSync(cifsCredentialsFile(step.path), { force: true });
      try {
        rmdirSync(step.path);
      } catch (error) {
        if (errnoCode(error) !== "ENOENT" && errnoCode(error) !== "ENOTEMPTY") throw error;
      }
  }
}

/** Undoes a record's steps newest first; every step is tried, the first error is thrown. */
async function undoSteps(steps: readonly ChainStep[]): Promise<void> {
  let first: unknown;
  for (const step of [...steps].reverse()) {
    try {
      await undoStep(step);
    } catch (error) {
      first ??= error;
    }
  }
  if (first) throw first;
}

function removeRecord(record: ChainRecord): void {
  rmSync(join(chainDirectory(), `${record.id}.json`), { force: true });
}

/** Takes down what killed mirror commands left: their mounts, loop devices and records. Returns how many. */
export async function cleanStaleChains(): Promise<number> {
  let cleaned = 0;
  for (const record of readChainRecords()) {
    if (ownerAlive(record)) continue;
    if (record.purpose === "browse" && record.complete) {
      // Left mounted for a person; stale only once its top mount is gone (unmounted by hand).
      if (record.mountpoint && mountAt(record.mountpoint)) continue;
    }
    await undoSteps(record.steps);
    removeRecord(record);
    cleaned++;
  }
  return cleaned;
}

/** Takes down the browse chains of a configuration (`blaine mirror unmount`), or the one shown at `mountpoint`. */
export async function unmountBrowse(configFile: string, mountpoint?: string): Promise<ChainRecord[]> {
  await cleanStaleChains();
  const taken: ChainRecord[] = [];
  for (const record of readChainRecords()) {
    if (record.purpose !== "browse" || record.config !== configFile) continue;
    if (mountpoint !== undefined && record.mountpoint !== mountpoint) continue;
    await undoSteps(record.steps);
    removeRecord(record);
    taken.push(record);
  }
  return taken;
}

export class MirrorChain {
  #record: ChainRecord;
  readonly #dir: string;

  private constructor(record: ChainRecord, dir: string) {
    this.#record = record;
    this.#dir = dir;
  }

  /**
   * Starts a chain for a configuration's store: stale chains are cleaned
   * first; a store in use by another live command, or mounted for
   * browsing (when `exclusiveOfBrowse`), is refused (the same image on two
   * loop devices would show btrfs one file system twice).
   */
  static async start(configFile: string, purpose: ChainRecord["purpose"], options: { readonly mountpoint?: string } = {}): Promise<MirrorChain> {
    await cleanStaleChains();
    for (const record of readChainRecords()) {
      if (record.config !== configFile) continue;
      if (record.purpose === "browse") {
        throw new BlaineError(`the store of ${configFile} is mounted for browsing at ${record.mountpoint}: run blaine mirror unmount -c ${configFile} first`, ExitCode.usage);
      }
      throw new BlaineError(`another blaine mirror command (pid ${record.pid}) is using the store of ${configFile}`, ExitCode.usage);
    }
    const base = ensureChainDirectory();
    const id = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const dir = join(base, id);
    const record: ChainRecord = {
      id,
      config: configFile,
      purpose,
      pid: process.pid,
      pidStart: processStart(process.pid) ?? "",
      ...(options.mountpoint ? { mountpoint: options.mountpoint } : {}),
      complete: false,
      steps: [{ kind: "dir", path: dir }],
    };
    const chain = new MirrorChain(record, dir);
    chain.#save();
    mkdirSync(dir, { mode: 0o700 });
    return chain;
  }

  #save(): void {
    writeFileAtomic(join(chainDirectory(), `${this.#record.id}.json`), `${JSON.stringify(this.#record, null, 2)}\n`, 0o600);
  }

  #add(step: ChainStep): void {
    this.#record = { ...this.#record, steps: [...this.#record.steps, step] };
    this.#save();
  }

  /** A private directory of this chain (a mountpoint), made now and removed at the end. */
  directory(name: string): string {
    const path = join(this.#dir, name);
    this.#add({ kind: "dir", path });
    mkdirSync(path, { recursive: true, mode: 0o700 });
    return path;
  }

  async mount(source: string, target: string, options: KernelMountOptions, what: string): Promise<void> {
    this.#add({ kind: "mount", target, fuse: false });
    await mountKernel(source, target, options, what);
  }

  async mountCifs(share: CifsShare, target: string, readonly: boolean): Promise<void> {
    this.#add({ kind: "mount", target, fuse: false });
    await mountCifs(share, target, this.#dir, { readonly });
  }

  async attachLoop(file: string, readonly: boolean): Promise<string> {
    this.#add({ kind: "loop", file });
    return attachLoop(file, { readonly });
  }

  async luksOpen(device: string, keyfile: string, readonly: boolean): Promise<string> {
    const name = `blaine-mirror-${this.#record.id}`;
    this.#add({ kind: "luks", name });
    return luksOpen(device, name, keyfile, { readonly });
  }

  /** Mounts a gocryptfs cipher directory (the password on gocryptfs' stdin). */
  async mountGocryptfs(cipherDir: string, target: string, password: string, options: { readonly readonly: boolean; readonly what: string }): Promise<void> {
    this.#add({ kind: "mount", target, fuse: true });
    const outcome = await gocryptfs.mount(cipherDir, target, password, { readonly: options.readonly, fsname: `blaine-mirror:${options.what}` });
    if (outcome === "wrong-key") throw new BlaineError(`the key file does not open ${options.what} (gocryptfs: wrong password)`);
    await waitUntilMounted(target);
  }

  /** Undoes the steps taken since `target`'s (it and what sits on it), before the chain ends. */
  async release(target: string): Promise<void> {
    const index = this.#record.steps.findIndex((step) => (step.kind === "mount" && step.target === target) || (step.kind === "loop" && step.file === target));
    if (index < 0) return;
    await undoSteps(this.#record.steps.slice(index));
    this.#record = { ...this.#record, steps: this.#record.steps.slice(0, index) };
    this.#save();
  }

  /** A browse chain is done mounting: it stays after this process ends. */
  markComplete(): void {
    this.#record = { ...this.#record, complete: true };
    this.#save();
  }

  /** Takes everything down in reverse order and removes the record. */
  async close(): Promise<void> {
    await undoSteps(this.#record.steps);
    removeRecord(this.#record);
  }
}

/**
 * Runs `body` with a chain that is taken down whatever happens: success, an
 * error, Ctrl-C or SIGTERM (the signal aborts `signal`, which stops rsync;
 * the chain comes down, then the process exits 130 or 143). A browse chain
 * that completed is left mounted.
 */
export async function withChain<T>(
  configFile: string,
  purpose: ChainRecord["purpose"],
  body: (chain: MirrorChain, signal: AbortSignal) => Promise<T>,
  options: { readonly mountpoint?: string } = {},
): Promise<T> {
  const abort = new AbortController();
  let exitCode: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    exitCode = signal === "SIGINT" ? 130 : 143;
    abort.abort(new BlaineError(`interrupted by ${signal}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let chain: MirrorChain | undefined;
  let keep = false;
  try {
    chain = await MirrorChain.start(configFile, purpose, options);
    const result = await body(chain, abort.signal);
    if (abort.signal.aborted) throw abort.signal.reason;
    keep = purpose === "browse";
    return result;
  } finally {
    try {
      if (chain && !keep) await chain.close();
    } catch (error) {
      process.stderr.write(`blaine: ${errorMessage(error)}\n`);
    }
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (exitCode !== undefined) {
      process.stderr.write(`blaine: interrupted; everything the mirror mounted is unmounted\n`);
      process.exit(exitCode);
    }
  }
}

/** Throws the abort's reason if a signal arrived (checked between steps). */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason;
}
