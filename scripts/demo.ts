/**
 * The demo: builds a small media tree under ./demo, prepares ./demo/disk as
 * an archive disk, archives the tree twice (the second run finds nothing to
 * do), and shows the summary and the archive's status.
 */
import { existsSync, linkSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..", "demo");
const bin = join(import.meta.dir, "..", "bin", "blaine.ts");
const source = join(root, "media");
const disk = join(root, "disk");
const db = join(root, "catalog.db");

rmSync(root, { recursive: true, force: true });
mkdirSync(join(source, "movies"), { recursive: true });
mkdirSync(join(source, "music", "album"), { recursive: true });
for (let i = 1; i <= 3; i++) writeFileSync(join(source, "movies", `film-${i}.mkv`), crypto.getRandomValues(new Uint8Array(2 * 1024 * 1024)));
for (let i = 1; i <= 12; i++) writeFileSync(join(source, "music", "album", `track ${i}.flac`), crypto.getRandomValues(new Uint8Array(64 * 1024)));
writeFileSync(join(source, "movies", "film-1.srt"), "1\n00:00:01,000 --> 00:00:02,000\nHello\n");
linkSync(join(source, "movies", "film-1.mkv"), join(source, "movies", "film-1 (hardlink).mkv"));
// Same content under another name: stored once, as a hardlink.
writeFileSync(join(source, "music", "cover copy.flac"), await Bun.file(join(source, "music", "album", "track 1.flac")).bytes());

function blaine(...args: string[]): number {
  console.log(`\n$ blaine ${args.join(" ")}`);
  const result = Bun.spawnSync(["bun", bin, ...args], { stdout: "inherit", stderr: "inherit" });
  return result.exitCode ?? 1;
}

let failed = 0;
failed += blaine("disk", "init", disk, "--label", "demo-A", "--db", db);
failed += blaine("run", "--db", db, "--dest", disk, source);
failed += blaine("run", "--db", db, "--dest", disk, source);
failed += blaine("verify", "--db", db, "--dest", disk);
failed += blaine("status", "--db", db, "--dest", disk);
console.log(`\nThe archive disk is ${disk}: a plain mirror of ${source} (see ${join(disk, source)}), with Blaine's catalog in ${join(disk, ".blaine")}.`);
if (!existsSync(join(disk, source, "movies", "film-1.mkv"))) failed++;
process.exit(failed === 0 ? 0 : 1);
