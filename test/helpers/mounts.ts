import { mkdirSync } from "node:fs";

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
