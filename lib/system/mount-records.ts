import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errnoCode } from "../errors.ts";
import { writeFileAtomic } from "../fs/atomic.ts";
import { mountAt, unmountFuse } from "./fuse-mount.ts";

/**
 * Blaine's private mountpoints and one record per mount, under a 0700
 * directory (/run/blaine for root). The record is written before mounting,
 * so a run killed at any moment leaves a record that the next command finds:
 * a record whose process is gone and whose mountpoint is still mounted is a
 * stale mount, taken down then.
 */
export interface MountRecord {
  readonly name: string;
  readonly mountpoint: string;
  readonly cipherDir: string;
  readonly cipher: string;
  readonly label: string;
  readonly readonly: boolean;
  /** "command": held by one blaine process for its duration; "browse": made by `blaine mount` for a person. */
  readonly purpose: "command" | "browse";
  readonly pid: number;
  /** The process' start time (clock ticks since boot), so a reused pid is not mistaken for the owner. */
  readonly pidStart: string;
  /** Mount and pid namespaces of the owner: a process elsewhere sees other mounts and pids, so it leaves the record alone. */
  readonly namespace?: string;
}

function currentNamespace(): string {
  try {
    return `${readlinkSync("/proc/self/ns/mnt")} ${readlinkSync("/proc/self/ns/pid")}`;
  } catch {
    return "";
  }
}

/** Where mountpoints and records live; BLAINE_RUN_DIR overrides it. */
export function runDirectory(): string {
  if (process.env.BLAINE_RUN_DIR) return process.env.BLAINE_RUN_DIR;
  if (process.getuid?.() === 0) return "/run/blaine";
  return process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, "blaine") : join(tmpdir(), `blaine-${process.getuid?.() ?? "user"}`);
}

function ensureRunDirectory(): string {
  const dir = runDirectory();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

/** Field 22 of /proc/PID/stat: when the process started. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function ownerAlive(record: MountRecord): boolean {
  return processStart(record.pid) === record.pidStart;
}

/** Makes a fresh private mountpoint and writes its record (before anything is mounted there). */
export function createMountRecord(fields: Omit<MountRecord, "name" | "mountpoint" | "pid" | "pidStart">, mountpoint?: string): MountRecord {
  const dir = ensureRunDirectory();
  const name = `${fields.label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const target = mountpoint ?? join(dir, name);
  if (!mountpoint) mkdirSync(target, { mode: 0o700 });
  const record: MountRecord = { ...fields, name, mountpoint: target, pid: process.pid, pidStart: processStart(process.pid) ?? "", namespace: currentNamespace() };
  writeFileAtomic(join(dir, `${name}.json`), `${JSON.stringify(record, null, 2)}\n`);
  return record;
}

/** Removes a record and, when Blaine made it, its now empty mountpoint. */
export function removeMountRecord(record: MountRecord): void {
  const dir = runDirectory();
  if (record.mountpoint === join(dir, record.name)) {
    try {
      rmdirSync(record.mountpoint);
    } catch (error) {
      if (errnoCode(error) !== "ENOENT") throw error;
    }
  }
  rmSync(join(dir, `${record.name}.json`), { force: true });
}

/** The records of mounts made in this mount and pid namespace (the only ones this process can judge). */
export function readMountRecords(): MountRecord[] {
  const dir = runDirectory();
  if (!existsSync(dir)) return [];
  const here = currentNamespace();
  const records: MountRecord[] = [];
  for (const entry of readdirSync(dir)) {
    if (!entry.endsWith(".json")) continue;
    try {
      const record = JSON.parse(readFileSync(join(dir, entry), "utf8")) as MountRecord;
      if (record.namespace === undefined || record.namespace === here) records.push(record);
    } catch {
      // A record being written right now (atomic rename pending) or damaged: skipped.
    }
  }
  return records;
}

/**
 * Who holds a mount: this process, another live blaine command (also a
 * `blaine mount` still mounting: its record exists before its mount does),
 * a person (`blaine mount` done), or nobody (stale).
 */
export function mountHolder(record: MountRecord): "self" | "other-command" | "browse" | "stale" {
  if (ownerAlive(record)) return record.pid === process.pid ? "self" : "other-command";
  return record.purpose === "browse" ? "browse" : "stale";
}

/**
 * Takes down what killed runs left behind: mounts whose command is gone are
 * unmounted (lazily if something still has a file open there), and records
 * of mounts that no longer exist are removed. Returns what was cleaned.
 */
export async function cleanStaleMounts(): Promise<MountRecord[]> {
  const cleaned: MountRecord[] = [];
  for (const record of readMountRecords()) {
    const holder = mountHolder(record);
    const mounted = mountAt(record.mountpoint) !== undefined;
    if (holder === "stale") {
      if (mounted) await unmountFuse(record.mountpoint, { lazy: true });
      removeMountRecord(record);
      cleaned.push(record);
    } else if (holder === "browse" && !mounted) {
      // Unmounted by hand (fusermount -u): only the record is left.
      removeMountRecord(record);
    }
  }
  return cleaned;
}
