import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { blaine, type CliResult } from "./cli.ts";

/**
 * A volume-archive test's world: a source directory (on a real btrfs or XFS
 * loop device, or a plain directory), a destination directory or S3 prefix,
 * a catalog (SQLite file or PostgreSQL database), and `volume` to run the
 * real CLI against them.
 */
export type LoopFs = "btrfs" | "xfs";

/** Why a btrfs or XFS loop file system cannot be made here, or undefined. */
export function loopFsMissing(fs: LoopFs): string | undefined {
  if (process.getuid?.() !== 0) return "mounting a loop device needs root";
  if (!Bun.which(`mkfs.${fs}`)) return `mkfs.${fs} is not installed`;
  if (!Bun.which("losetup")) return "losetup is not installed";
  return undefined;
}

/** A real file system of `fs` on a sparse loop image, mounted at DIR/mnt; `unmount` takes it down. */
export function mountLoopFs(dir: string, fs: LoopFs): { mountpoint: string; unmount(): void } {
  const image = join(dir, `${fs}.img`);
  const mountpoint = join(dir, "mnt");
  mkdirSync(mountpoint, { recursive: true });
  // XFS wants 300 MB at least; sparse, so it costs what is written.
  const truncated = Bun.spawnSync(["truncate", "-s", "320M", image]);
  if (truncated.exitCode !== 0) throw new Error(`truncate failed: ${truncated.stderr}`);
  const made = Bun.spawnSync(fs === "btrfs" ? ["mkfs.btrfs", "-q", "-f", image] : ["mkfs.xfs", "-q", "-f", "-m", "reflink=1", image]);
  if (made.exitCode !== 0) throw new Error(`mkfs.${fs} failed: ${made.stderr}`);
  const mounted = Bun.spawnSync(["mount", "-o", "loop", image, mountpoint]);
  if (mounted.exitCode !== 0) throw new Error(`mount ${fs} failed: ${mounted.stderr}`);
  return {
    mountpoint,
    unmount() {
      for (let attempt = 0; attempt < 20; attempt++) {
        if (Bun.spawnSync(["umount", mountpoint]).exitCode === 0) return;
        Bun.sleepSync(100);
      }
      Bun.spawnSync(["umount", "-l", mountpoint]);
    },
  };
}

export interface VolumeEnv {
  readonly dir: string;
  readonly db: string;
  /** The directory holding the volumes' image files. */
  readonly source: string;
  /** --dest as given to arch-init. */
  readonly dest: string;
  /** Runs `blaine volume ARGS --db DB`. */
  volume(args: readonly string[], env?: Record<string, string>): Promise<CliResult>;
  /** The same, asserting exit 0 and parsing --json. */
  ok(args: readonly string[], env?: Record<string, string>): Promise<any>;
  /** Sends every volume and notes the bytes `image` held for the session made (of its only volume); returns that volume's line of send --json. */
  sendRecorded(expected: Map<string, Uint8Array>, image: string, env?: Record<string, string>): Promise<any>;
  /** Chunk files in a directory destination (its store directory). */
  chunkFiles(): string[];
}

export function volumeEnv(options: { dir: string; source: string; db: string; dest: string; storeDir?: string; env?: Record<string, string> }): VolumeEnv {
  const env: VolumeEnv = {
    dir: options.dir,
    db: options.db,
    source: options.source,
    dest: options.dest,
    volume: (args, extra) => blaine(["volume", ...args, "--db", options.db], { env: { ...options.env, ...extra } }),
    async ok(args, extra) {
      const result = await env.volume([...args, "--json"], extra);
      if (result.exitCode !== 0) throw new Error(`blaine volume ${args.join(" ")} exited ${result.exitCode}: ${result.stderr}`);
      return result.json;
    },
    async sendRecorded(expected, image, extra) {
      const sent = (await env.ok(["send"], extra)).volumes[0];
      expected.set(sent.session, readFileSync(image));
      return sent;
    },
    chunkFiles() {
      const root = join(options.storeDir ?? "", "chunks");
      if (!options.storeDir || !existsSync(root)) return [];
      return readdirSync(root).flatMap((sub) => readdirSync(join(root, sub)).filter((name) => /^[0-9a-f]{64}$/.test(name))).sort();
    },
  };
  return env;
}

export function tempDir(prefix: string, roots: string[]): string {
  const dir = mkdtempSync(`/tmp/${prefix}`);
  roots.push(dir);
  return dir;
}

export function removeRoots(roots: readonly string[]): void {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
}
