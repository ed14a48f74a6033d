import { existsSync, mkdirSync } from "node:fs";

/** Whether this process can mount (root, and the kernel lets it): tests needing it skip otherwise. */
export function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = `/tmp/blaine-mount-probe-${process.pid}`;
  mkdirSync(probe, { recursive: true });
  const mounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]).exitCode === 0;
  if (mounted) Bun.spawnSync(["umount", probe]);
  Bun.spawnSync(["rmdir", probe]);
  return mounted;
}

/** Mounts a size-limited tmpfs: a real small disk that fills up. */
export function mountTmpfs(dir: string, size: string): () => void {
  mkdirSync(dir, { recursive: true });
  const result = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  if (result.exitCode !== 0) throw new Error(`mount tmpfs failed: ${result.stderr}`);
  return () => {
    Bun.spawnSync(["umount", "-l", dir]);
  };
}

/** Why encrypted disks with `cipher` cannot be tested here (they need real FUSE mounts), or undefined when they can. */
export function cipherMissing(cipher: "gocryptfs" | "securefs"): string | undefined {
  if (!existsSync("/dev/fuse")) return "/dev/fuse is missing";
  if (!Bun.which(cipher)) return `${cipher} is not installed`;
  if (!Bun.which("fusermount3") && !Bun.which("fusermount")) return "fusermount is not installed";
  return undefined;
}
