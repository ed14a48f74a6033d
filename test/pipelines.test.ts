import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { appendFileSync, chmodSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as blaineLib from "../lib/index.ts";
import { copier, copyWithHash, plan, diff, hashWhereDuplicatePossible, loadSettings, openArchiveRun, parity, walk, writeManifest, type PlannedFile } from "../lib/index.ts";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { blaine, whyNotAsNobody } from "./helpers/cli.ts";

// These tests run the real CLI on real trees (and kill it, and re-run it): Bun's 5 s default is too short.
setDefaultTimeout(120_000);

let env: ArchiveEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
});

describe("pipeline scripts", () => {
  test("the inventory example writes a manifest that sha1sum -c accepts", async () => {
    env = await archiveEnv({ a: "alpha", dir: { "b c": "beta", "new\nline": "odd" } });
    // A name that is not UTF-8: the manifest holds its real bytes.
    writeFileSync(Buffer.concat([Buffer.from(`${env.source}/dir/bad`), Buffer.from([0xff])]), "not UTF-8");
    const out = join(env.root, "inv");
    const result = await blaine(["run", join(import.meta.dir, "..", "pipelines", "inventory.ts"), "--dest", out, "--json", env.source]);
    expect(result.exitCode).toBe(0);
    expect(result.json.files).toBe(4);
    const check = Bun.spawnSync(["sha1sum", "-c", "--quiet", join(out, "inventory.sha1")]);
    expect(check.stderr.toString()).toBe("");
    expect(check.exitCode).toBe(0);
  });

  test("the inventory example refuses to write into an archive disk (a stray file there fails verify)", async () => {
    env = await archiveEnv({ a: "alpha" });
    const result = await blaine(["run", join(import.meta.dir, "..", "pipelines", "inventory.ts"), "--dest", env.disk, env.source]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`${env.disk} is an archive disk`);
    expect((await env.verify()).exitCode).toBe(0);
  });

  test("no external program sees BLAINE_PASSWORD in its environment", async () => {
    env = await archiveEnv({ a: "alpha" });
    const script = join(env.root, "print-env.ts");
    const exec = join(import.meta.dir, "..", "lib", "system", "exec.ts");
    writeFileSync(
      script,
      `import { zx } from ${JSON.stringify(exec)};
export default async function (context) {
  const $ = await zx();
  context.output.result({ env: (await $\`env\`).stdout });
  return 0;
}
`,
    );
    const result = await blaine(["run", script, "--json", env.source], { env: { BLAINE_PASSWORD: "hunter2-secret" } });
    expect(result.exitCode).toBe(0);
    expect(result.json.env).toContain("PATH=");
    expect(result.json.env).not.toContain("hunter2-secret");
  });

  test("a user's own pipeline script runs through blaine run and can add a stage", async () => {
    env = await archiveEnv({ "keep.mkv": "k", "skip.sample.mkv": "s" });
    const script = join(env.root, "my-pipeline.ts");
    const lib = join(import.meta.dir, "..", "lib", "index.ts");
    writeFileSync(
      script,
      `import { walk, diff, hashWhereDuplicatePossible, plan, copier, parity, writeManifest } from ${JSON.stringify(lib)};
async function* noSamples(items) { for await (const item of items) if (!item.path.includes(".sample.")) yield item; }
export default async function (context) {
  const run = await context.openArchiveRun();
  try {
    const planned = plan(hashWhereDuplicatePossible(diff(noSamples(walk(run.sources, run.walk)), run.diff), run.hash), run.plan);
    return await run.finish(writeManifest(parity(copier(planned, run.copier), run.parity), run.manifest));
  } finally { run.close(); }
}
`,
    );
    const result = await blaine(["run", script, "--db", env.db, "--dest", env.disk, "--json", env.source]);
    expect(result.exitCode).toBe(0);
    expect(result.json.new).toBe(1);
    expect((await env.cli("ls", "--json")).json.files.map((r: any) => r.path)).toEqual([join(env.source, "keep.mkv")]);
  });

  test("a script without a default export is refused with its name", async () => {
    env = await archiveEnv({});
    const script = join(env.root, "bad.ts");
    writeFileSync(script, "export const x = 1;\n");
    const result = await blaine(["run", script, "--db", env.db, "--dest", env.disk, env.source]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("bad.ts");
  });
});

/** Runs the archive pipeline in-process with an extra stage between differ and hasher: fault injection by composition. */
async function runWith(e: ArchiveEnv, inject: (item: PlannedFile) => void, copy?: typeof copyWithHash) {
  const settings = loadSettings({ db: e.db, dest: e.disk }, [e.source]);
  const run = await openArchiveRun(settings);
  try {
    const copierOptions = copy ? { ...run.copier, copy } : run.copier;
    async function* tap(items: AsyncIterable<PlannedFile>) {
      for await (const item of items) {
        inject(item);
        yield item;
      }
    }
    const planned = plan(hashWhereDuplicatePossible(tap(diff(walk(run.sources, run.walk), run.diff)), run.hash), run.plan);
    return await run.finish(writeManifest(parity(copier(planned, copierOptions), run.parity), run.manifest));
  } finally {
    run.close();
  }
}

describe("files that vanish or change during a run", () => {
  test("a file that vanishes after the walk is reported in errors; the run goes on", async () => {
    env = await archiveEnv({ a: "1", b: "2", c: "3" });
    const result = await runWith(env, (item) => {
      if (item.path.endsWith("/b")) unlinkSync(item.path);
    });
    expect(result.new).toBe(2);
    expect(result.errors).toEqual([{ path: join(env.source, "b"), message: "vanished before it could be copied" }]);
    expect(result.exitCode).toBe(1);
  });

  test("a file that changes while copied is retried once and then archived as it is", async () => {
    env = await archiveEnv({ grow: { bytes: 10_000, seed: 1 } });
    let calls = 0;
    const result = await runWith(env, () => {}, async (request) => {
      const copied = await copyWithHash(request);
      if (++calls === 1) appendFileSync(request.source, "more");
      return { ...copied, sourceAfter: (await import("node:fs")).statSync(request.source) };
    });
    expect(calls).toBe(2);
    expect(result.errors).toEqual([]);
    expect(result.new).toBe(1);
    expect(readFileSync(env.onDisk("grow"))).toEqual(readFileSync(join(env.source, "grow")));
    expect((await env.verify()).exitCode).toBe(0);
  });

  test("a file that keeps changing is reported after the retry, nothing half-copied is left", async () => {
    env = await archiveEnv({ busy: "x", calm: "y" });
    const result = await runWith(env, () => {}, async (request) => {
      const copied = await copyWithHash(request);
      if (request.source.endsWith("busy")) appendFileSync(request.source, "z");
      return { ...copied, sourceAfter: (await import("node:fs")).statSync(request.source) };
    });
    expect(result.new).toBe(1);
    expect(result.errors.map((e: { path: string }) => e.path)).toEqual([join(env.source, "busy")]);
    expect(result.errors[0].message).toMatch(/changed while being copied/);
    expect((await env.verify()).exitCode).toBe(0);
  });

});

const notAsNobody = whyNotAsNobody();
if (notAsNobody) console.log(`skipped unreadable-directory test: ${notAsNobody}`);

describe("a directory the walk cannot read", () => {
  test.skipIf(notAsNobody !== undefined)("is reported by its path with exit 1 (README: some files could not be archived), and the rest is archived", async () => {
    env = await archiveEnv({ ok: "1", locked: { inside: "2" }, open: { c: "3" } });
    // Blaine runs as nobody over a tree nobody owns, except one directory no one may read.
    Bun.spawnSync(["chown", "-R", "nobody:nogroup", env.root]);
    const locked = join(env.source, "locked");
    chmodSync(locked, 0o000);
    const result = await blaine(["run", "--db", env.db, "--dest", env.disk, "--json", env.source], { asNobody: true, env: { HOME: env.root } });
    chmodSync(locked, 0o755);
    expect(result.json.errors).toHaveLength(1);
    expect(result.json.errors[0].path).toBe(locked);
    expect(result.json.errors[0].message).toMatch(/EACCES|permission denied/i);
    expect(result.stderr).toContain(locked);
    expect(result.exitCode).toBe(1);
    expect(result.json.new).toBe(2);
    expect((await env.cli("ls", "--json")).json.files.map((file: { path: string }) => file.path)).toEqual([join(env.source, "ok"), join(env.source, "open", "c")]);
  });
});

/** The parity sets a disk's catalog records, by content hash. */
function paritySets(disk: string): string[] {
  const db = new Database(join(disk, ".blaine", "catalog.db"), { readonly: true });
  try {
    return (db.query("SELECT hash FROM parity_sets ORDER BY hash").all() as { hash: string }[]).map((row) => row.hash);
  } finally {
    db.close();
  }
}

/** A pipeline script that imports lib/index.ts alone and puts a stage of its own after the planner (with the parity stage or without). */
function userPipeline(withParity: boolean, marker: string): string {
  const lib = join(import.meta.dir, "..", "lib", "index.ts");
  return `import { walk, diff, hashWhereDuplicatePossible, plan, copier, parity, writeManifest, type PipelineContext, type PlannedFile, type RunResult } from ${JSON.stringify(lib)};
import { appendFileSync } from "node:fs";
async function* noted(items: AsyncIterable<PlannedFile>): AsyncGenerator<PlannedFile> {
  for await (const item of items) {
    appendFileSync(${JSON.stringify(marker)}, item.path + "\\n");
    yield item;
  }
}
export default async function (context: PipelineContext): Promise<RunResult> {
  const run = await context.openArchiveRun();
  try {
    const planned = noted(plan(hashWhereDuplicatePossible(diff(walk(run.sources, run.walk), run.diff), run.hash), run.plan));
    const copied = copier(planned, run.copier);
    return await run.finish(writeManifest(${withParity ? "parity(copied, run.parity)" : "copied"}, run.manifest));
  } finally {
    run.close();
  }
}
`;
}

describe("a pipeline script gets the whole end of a run", () => {
  test("a user stage composed into the archive pipeline from lib/index.ts alone: deletions applied, parity sets made, counts final, the run recorded", async () => {
    env = await archiveEnv({ "keep.bin": { bytes: 20_000, seed: 1 }, "gone.bin": { bytes: 20_000, seed: 2 } });
    expect((await env.run("--parity", "10")).exitCode).toBe(0);
    unlinkSync(join(env.source, "gone.bin"));
    writeFileSync(join(env.source, "new.bin"), Buffer.alloc(30_000, 7));
    const marker = join(env.root, "noted.txt");
    const script = join(env.root, "noted-pipeline.ts");
    writeFileSync(script, userPipeline(true, marker));
    const result = await blaine(["run", script, "--db", env.db, "--dest", env.disk, "--parity", "10", "--json", env.source]);
    expect(result.exitCode).toBe(0);
    expect(readFileSync(marker, "utf8")).toBe(`${join(env.source, "new.bin")}\n`);
    expect(result.json).toMatchObject({ new: 1, deleted: 1, renamed: 0, modified: 0, unchanged: 1, warnings: [] });
    // Deletions applied: gone from the disk and the catalog.
    expect(readdirSync(env.onDisk()).sort()).toEqual(["keep.bin", "new.bin"]);
    expect((await env.cli("ls", "--json")).json.files.map((row: { path: string }) => row.path).sort()).toEqual([join(env.source, "keep.bin"), join(env.source, "new.bin")]);
    // Parity settled: one recorded set per content on the disk, none for the content that went.
    expect(paritySets(env.disk)).toHaveLength(2);
    // The run recorded, with its summary.
    const db = new Database(env.db, { readonly: true });
    try {
      const runs = db.query("SELECT finished_at AS finishedAt, exit_code AS exitCode, summary FROM runs ORDER BY id").all() as { finishedAt: number | null; exitCode: number; summary: string }[];
      expect(runs).toHaveLength(2);
      expect(runs[1].finishedAt).not.toBeNull();
      expect(runs[1].exitCode).toBe(0);
      expect(JSON.parse(runs[1].summary)).toMatchObject({ new: 1, deleted: 1 });
    } finally {
      db.close();
    }
    expect((await env.verify()).exitCode).toBe(0);
  });

  test("a pipeline without the parity stage is warned, and its parity is made at the end of the run", async () => {
    env = await archiveEnv({ "a.bin": { bytes: 20_000, seed: 3 } });
    const script = join(env.root, "no-parity.ts");
    writeFileSync(script, userPipeline(false, join(env.root, "noted.txt")));
    const result = await blaine(["run", script, "--db", env.db, "--dest", env.disk, "--parity", "10", "--json", env.source]);
    expect(result.exitCode).toBe(0);
    expect(result.json.new).toBe(1);
    expect(result.json.warnings.map((warning: { message: string }) => warning.message)).toEqual([expect.stringContaining("this pipeline has no parity stage")]);
    expect(paritySets(env.disk)).toHaveLength(1);
    expect((await env.verify()).exitCode).toBe(0);
  });

  test("a pipeline without the manifest writer or the differ deletes nothing: a renamed file's only copy stays archived", async () => {
    env = await archiveEnv({ "a.bin": { bytes: 20_000, seed: 5 } });
    expect((await env.run()).exitCode).toBe(0);
    renameSync(join(env.source, "a.bin"), join(env.source, "b.bin"));
    const lib = join(import.meta.dir, "..", "lib", "index.ts");
    const pipelines = {
      "no-manifest.ts": "run.finish(copier(plan(hashWhereDuplicatePossible(diff(walk(run.sources, run.walk), run.diff), run.hash), run.plan), run.copier))",
      "no-differ.ts": "run.finish((async function* () { await drain(walk(run.sources, run.walk)); })())",
    };
    for (const [name, finish] of Object.entries(pipelines)) {
      const script = join(env.root, name);
      writeFileSync(
        script,
        `import { walk, diff, hashWhereDuplicatePossible, plan, copier, drain } from ${JSON.stringify(lib)};
export default async function (context) {
  const run = await context.openArchiveRun();
  try {
    return await ${finish};
  } finally { run.close(); }
}
`,
      );
      const result = await blaine(["run", script, "--db", env.db, "--dest", env.disk, "--json", env.source]);
      expect(result.exitCode).toBe(0);
      expect(result.json.deleted).toBe(0);
      const warnings = result.json.warnings.map((warning: { message: string }) => warning.message);
      expect(warnings).toContainEqual(expect.stringContaining(name === "no-manifest.ts" ? "no manifest writer (writeManifest)" : "no differ (diff)"));
      expect((await env.cli("ls", "--json")).json.files.map((row: { path: string }) => row.path)).toEqual([join(env.source, "a.bin")]);
      expect(readdirSync(env.onDisk())).toContain("a.bin");
    }
    // The default pipeline then sees the rename as one.
    const result = await env.run("--json");
    expect(result.json).toMatchObject({ renamed: 1, deleted: 0, new: 0 });
    expect((await env.cli("ls", "--json")).json.files.map((row: { path: string }) => row.path)).toEqual([join(env.source, "b.bin")]);
  });

  test("a script that opens a run and returns without run.finish fails, naming itself and what was not done", async () => {
    env = await archiveEnv({ "a.bin": { bytes: 2_000, seed: 4 } });
    const script = join(env.root, "unfinished.ts");
    const lib = join(import.meta.dir, "..", "lib", "index.ts");
    writeFileSync(
      script,
      `import { walk, diff, drain } from ${JSON.stringify(lib)};
export default async function (context) {
  const run = await context.openArchiveRun();
  try {
    await drain(diff(walk(run.sources, run.walk), run.diff));
    return 0;
  } finally { run.close(); }
}
`,
    );
    const result = await blaine(["run", script, "--db", env.db, "--dest", env.disk, env.source]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("unfinished.ts");
    expect(result.stderr).toContain("without run.finish");
  });

  test("every type a stage's options name is exported from lib/index.ts", () => {
    const index = readFileSync(join(import.meta.dir, "..", "lib", "index.ts"), "utf8");
    const exported = new Set([...index.matchAll(/export (?:type )?\{([^}]*)\}/g)].flatMap((match) => match[1].split(",").map((name) => name.replace(/^\s*type\s+/, "").trim())));
    const builtIn = new Set(["AbortSignal", "AsyncIterable", "Map", "ReadonlyMap", "ReadonlySet", "Set", "Promise", "Pick", "Error"]);
    const stages = join(import.meta.dir, "..", "lib", "archive", "stages");
    const missing: string[] = [];
    for (const file of readdirSync(stages)) {
      const text = readFileSync(join(stages, file), "utf8");
      for (const [, name, body] of text.matchAll(/export interface (\w+Options) \{([\s\S]*?)\n\}/g)) {
        const code = body.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
        if (!exported.has(name)) missing.push(name);
        for (const [type] of code.matchAll(/\b[A-Z]\w*\b/g)) if (!builtIn.has(type) && !exported.has(type)) missing.push(`${name}: ${type}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe("public surface", () => {
  test("lib/index.ts exports exactly this", () => {
    expect(Object.keys(blaineLib).sort()).toEqual([
      "ArchiveCatalog", "BLAINE_DIR", "BlaineError", "ExitCode", "ImageCatalog", "KeySource", "MATCH_MODES", "MountedDisk", "RunReport",
      "abandonImageBackup", "allocatedBlocks", "applyDeferred", "batches", "bytesOfText", "cleanupImages", "cloneDisk", "copier",
      "copyWithHash", "createRecoverySet", "decodeChunk", "dedupBlocks", "diff", "diskLayout", "drain", "encodeChunk", "encodeChunks",
      "everyBlock", "finishImageBackup", "formatBytes", "fsPath", "globToRegExp", "hashEach", "hashFile", "hashWhereDuplicatePossible",
      "hintedBlockRefs", "hintedBlocks", "initDisk", "listDisks", "listPending", "loadImageSettings", "loadSettings", "mapBounded", "openArchiveRun",
      "openEncryptedStore", "openImageBackup", "openImageSql", "openStore", "parity", "parseCompression", "parseSize", "parseVersionDoc", "plan", "quotedPath",
      "readBlocks", "readDiskLabel", "readHints", "rebuildCatalog", "releaseDiskMounts", "removeVersionAndDoc", "repairRecoverySet", "restoreFiles", "restoreImage",
      "retireDisk", "scrubImages", "settleVersionDocs", "storeChunks", "textFromBytes", "verifyDisks", "verifyRecoverySet", "versionDocText", "walk", "whereIs",
      "writeFileAtomic", "writeManifest", "writeVersionBlocks",
    ]);
  });
});
