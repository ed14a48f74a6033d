import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { CopyPool } from "../lib/copy/copy-pool.ts";
import { PROGRESS_BYTES } from "../lib/copy/copy-progress.ts";
import { ProgressLine } from "../lib/archive/run/progress.ts";
import { RunReport } from "../lib/archive/run/report.ts";
import { archiveEnv } from "./helpers/archive-env.ts";
import { blaine, waitFor } from "./helpers/cli.ts";
import { tempDir } from "./helpers/fixture.ts";

setDefaultTimeout(300_000);

const MiB = 1024 * 1024;

/** A file of `size` bytes that no copier takes for sparse or compressible: random MiB blocks, written out. */
function writeLargeFile(path: string, size: number): void {
  const block = randomBytes(MiB);
  const fd = openSync(path, "w");
  try {
    for (let at = 0; at < size; at += MiB) {
      block.writeUInt32LE(at / MiB, 0);
      writeSync(fd, block, 0, Math.min(MiB, size - at));
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The archive pipeline as a user's script runs it, watching the report the
 * progress line reads every millisecond; what it saw is written to `seen.json`.
 */
const WATCHING_PIPELINE = (out: string) => `
import { writeFileSync } from "node:fs";
import archive from ${JSON.stringify(join(import.meta.dir, "..", "pipelines", "archive.ts"))};
import type { PipelineContext } from ${JSON.stringify(join(import.meta.dir, "..", "lib", "index.ts"))};

export default async function watched(context: PipelineContext) {
  const seen: number[] = [];
  const look = () => {
    const bytes = context.report.progress.bytes;
    if (seen.at(-1) !== bytes) seen.push(bytes);
  };
  const timer = setInterval(look, 1);
  try {
    return await archive(context);
  } finally {
    clearInterval(timer);
    look();
    writeFileSync(${JSON.stringify(out)}, JSON.stringify(seen));
  }
}
`;

const hasDc3dd = Bun.which("dc3dd") !== null;
if (!hasDc3dd) console.log("skipped the dc3dd progress test: dc3dd is not installed (apt-get install dc3dd)");

describe("issue 11: progress within a large file", () => {
  test.each([
    ["builtin", true],
    ["dc3dd", hasDc3dd],
  ] as const)("a run with --copier %s shows the bytes of one large file advancing while it copies, each counted once", async (copier, available) => {
    if (!available) return;
    const env = await archiveEnv({});
    try {
      const size = 5 * PROGRESS_BYTES + 3 * MiB;
      writeLargeFile(join(env.source, "film.mkv"), size);
      const script = join(env.root, "watched.ts");
      const seenFile = join(env.root, "seen.json");
      writeFileSync(script, WATCHING_PIPELINE(seenFile));
      const result = await blaine(["run", script, "--db", env.db, "--dest", env.disk, "--copier", copier, "--json", env.source]);
      expect(result.exitCode).toBe(0);
      expect(result.json.bytesCopied).toBe(size);
      const seen = JSON.parse(readFileSync(seenFile, "utf8")) as number[];
      // Between nothing and the whole file: the copy said how far it got.
      const within = seen.filter((bytes) => bytes > 0 && bytes < size);
      expect(within.length).toBeGreaterThan(0);
      // Counted once: never beyond the file, never back, the whole file at the end.
      expect(seen.every((bytes, i) => i === 0 || bytes > seen[i - 1])).toBe(true);
      expect(Math.max(...seen)).toBe(size);
      expect(seen.at(-1)).toBe(size);
      // The archived copy is the file.
      expect(statSync(env.onDisk("film.mkv")).size).toBe(size);
      expect((await env.verify()).exitCode).toBe(0);
    } finally {
      env.cleanup();
    }
  });

  test("the copy workers say a large copy's progress every 64 MiB, and nothing of a small file", async () => {
    const dir = tempDir();
    const pool = new CopyPool(2);
    try {
      const large = join(dir.path, "large");
      const size = 3 * PROGRESS_BYTES + 5;
      writeLargeFile(large, size);
      writeFileSync(join(dir.path, "small"), "a small file");
      const job = (source: string, target: string, onProgress: (bytes: number) => void) => {
        const stats = statSync(source);
        return { source, target: join(dir.path, target), algorithm: "sha1" as const, mode: 0o644, mtimeMs: stats.mtimeMs, expectedSize: stats.size, onProgress };
      };
      const heard: number[] = [];
      const outcome = await pool.copy(job(large, "large-copy", (bytes) => heard.push(bytes)));
      expect(outcome.size).toBe(size);
      // At least at 64, 128 and 192 MiB (more often only when a copy is slow), rising, all before the end.
      expect(heard.length).toBeGreaterThanOrEqual(3);
      expect(heard.every((bytes, i) => bytes > (heard[i - 1] ?? 0) && bytes < size)).toBe(true);
      const small: number[] = [];
      await pool.copy(job(join(dir.path, "small"), "small-copy", (bytes) => small.push(bytes)));
      expect(small).toEqual([]);
    } finally {
      pool.close();
      dir.cleanup();
    }
  });

  test("while parity runs after the copies, the rate counts the parity bytes (it was copies alone, falling to nothing)", async () => {
    const report = new RunReport();
    report.planned(0);
    report.parityPlanned(600 * MiB);
    report.parityDone(300 * MiB);
    let written = "";
    const terminal = { isTTY: true, columns: 200, write: (text: string) => ((written += text), true) } as unknown as NodeJS.WriteStream;
    const line = new ProgressLine(report, terminal).start();
    try {
      await waitFor(() => written.includes("parity"), 5000, "the progress line");
    } finally {
      line.stop();
    }
    expect(written).toContain("parity 300.0 MiB/600.0 MiB");
    expect(written).not.toMatch(/, 0 B\/s/);
    expect(written).toMatch(/ETA /);
  });
});
