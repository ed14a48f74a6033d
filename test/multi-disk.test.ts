import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, copyFileSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { filesOf, seededBytes, snapshotTree, type TreeSpec } from "./helpers/fixture.ts";
import { diffTrees, diskContents, multiDiskEnv, type MultiDiskEnv } from "./helpers/multi-disk-env.ts";

// The whole scenario runs the real CLI some thirty times: Bun's 5 s default is far too short.
setDefaultTimeout(120_000);

let env: MultiDiskEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
});

const FILE = 50_000;
const RESERVE = ["--reserve", "150K"];

function collection(count: number, seedBase = 1): TreeSpec {
  const spec: TreeSpec = {};
  for (let i = 0; i < count; i++) {
    const dir = `d${i % 4}`;
    spec[dir] = { ...((spec[dir] as TreeSpec) ?? {}), [`f${String(i).padStart(2, "0")}`]: { bytes: FILE, seed: seedBase + i } };
  }
  return { coll: spec };
}

/** Archived path → disk label, from `blaine ls --json`. */
async function diskOfEachPath(e: MultiDiskEnv): Promise<Map<string, string>> {
  const listed = await e.cli(["ls", "--json"]);
  expect(listed.exitCode).toBe(0);
  return new Map((listed.json.files as { path: string; disk: string }[]).map((row) => [row.path, row.disk]));
}

async function whereis(e: MultiDiskEnv, relative: string): Promise<{ disk: string; copies: { pending: boolean }[] }> {
  const result = await e.cli(["whereis", e.path(relative), "--json"]);
  expect(result.exitCode).toBe(0);
  return result.json.files[0];
}

async function pendingByDisk(e: MultiDiskEnv): Promise<Record<string, string[]>> {
  const result = await e.cli(["pending", "--json"]);
  expect(result.exitCode).toBe(0);
  const byDisk: Record<string, string[]> = {};
  for (const action of result.json.actions as { disk: string; op: string; path: string; from?: string }[]) {
    (byDisk[action.disk] ??= []).push(`${action.op} ${action.from ? `${action.from.slice(env!.source.length)} -> ` : ""}${action.path.slice(env!.source.length)}`);
  }
  return byDisk;
}

/**
 * Each disk's file system agrees with its own catalog; a copy with nothing
 * pending also holds exactly what the host catalog places on its disk.
 */
async function expectDisksAgree(e: MultiDiskEnv, disks: Record<string, string[]>, pending: Record<string, string[]>) {
  const hostView = await diskOfEachPath(e);
  for (const [label, dirs] of Object.entries(disks)) {
    for (const dir of dirs) {
      const { onFileSystem, inCatalog } = diskContents(dir);
      expect(onFileSystem).toEqual(inCatalog);
      if (!pending[label]) expect(inCatalog).toEqual([...hostView].filter(([, disk]) => disk === label).map(([path]) => path).sort());
    }
  }
}

function writeFile(e: MultiDiskEnv, relative: string, content: Uint8Array | string) {
  mkdirSync(dirname(e.path(relative)), { recursive: true });
  writeFileSync(e.path(relative), content);
}

describe("the offsite scenario: disks A, B, C, twin C′, then D", () => {
  test("every step keeps whereis, the disks, their catalogs and the pending actions right; a final restore equals the source", async () => {
    env = await multiDiskEnv(collection(40));
    const e = env;
    if (!e.tmpfs) console.log("multi-disk scenario: not root, so disks are plain directories limited with --capacity");
    const A = await e.initDisk("A", 1_000_000);
    const B = await e.initDisk("B", 1_000_000);
    const C = await e.initDisk("C", 2_000_000);

    // 1. The collection goes onto A, B, C: A and B fill up, C is partly full.
    const first = await e.run([A, B, C], ...RESERVE);
    expect(first.exitCode).toBe(0);
    expect(first.json.new).toBe(40);
    expect(first.json.filledUp).toEqual(["A", "B"]);
    const listed = await e.cli(["disk", "list", "--json"], [A, B, C]);
    expect(listed.json.disks.map((disk: { label: string; state: string }) => [disk.label, disk.state])).toEqual([["A", "full"], ["B", "full"], ["C", "open"]]);
    const where = await diskOfEachPath(e);
    const on = (label: string) => [...where].filter(([, disk]) => disk === label).map(([path]) => path.slice(e.source.length + 1));
    expect(on("A").length).toBeGreaterThan(5);
    expect(on("B").length).toBeGreaterThan(5);
    expect(on("C").length).toBeGreaterThan(3);
    await expectDisksAgree(e, { A: [A], B: [B], C: [C] }, {});

    // 2. C gets a twin C′.
    const C2 = e.diskDir("C2", 2_000_000);
    const cloned = await e.cli(["disk", "clone", "C", C2, "--json"], [C]);
    expect(cloned.exitCode).toBe(0);
    expect(diffTrees(C, C2)).toBe("");
    expect((await whereis(e, on("C")[0])).copies).toHaveLength(2);

    // 3. + 4. A, B and C go offsite; C′ stays. Files are renamed, edited,
    // deleted (also on A and B), and new ones arrive, one identical to a file on A.
    const [a1, a2, a3] = on("A");
    const [b1, b2] = on("B");
    const [c1] = on("C");
    mkdirSync(e.path("coll/moved"), { recursive: true });
    renameSync(e.path(a1), e.path("coll/moved/a1"));
    writeFile(e, a2, seededBytes(FILE, 1001));
    rmSync(e.path(b1));
    renameSync(e.path(b2), e.path(`${b2}-renamed`));
    mkdirSync(e.path("coll/new"), { recursive: true });
    // The same content as a file on A, copied with its mtime (cp -p): a hardlink there shows it right (issue 12.11).
    expect(Bun.spawnSync(["cp", "-p", e.path(a3), e.path("coll/new/dup-of-a3")]).exitCode).toBe(0);
    writeFile(e, "coll/new/n1", seededBytes(FILE, 1002));
    appendFileSync(e.path(c1), "edited");
    const day1 = await e.run([C2], ...RESERVE);
    expect(day1.exitCode).toBe(0);
    expect(day1.json).toMatchObject({ new: 2, modified: 2, renamed: 2, deleted: 1, deduplicated: 1 });
    // A: rename, link, delete of the old a2; B: delete, rename; C's copy away: three copies.
    expect(day1.json.deferred.queued).toBe(8);
    expect(await whereis(e, "coll/moved/a1")).toMatchObject({ disk: "A" });
    expect(await whereis(e, a2)).toMatchObject({ disk: "C" });
    expect(await whereis(e, "coll/new/dup-of-a3")).toMatchObject({ disk: "A" });
    expect(await whereis(e, "coll/new/n1")).toMatchObject({ disk: "C", copies: [{ pending: true }, { pending: false }] });
    let pending = await pendingByDisk(e);
    expect(Object.fromEntries(Object.entries(pending).map(([disk, lines]) => [disk, [...lines].sort()]))).toEqual({
      A: [`delete /${a2}`, "link /coll/new/dup-of-a3", `rename /${a1} -> /coll/moved/a1`],
      B: [`delete /${b1}`, `rename /${b2} -> /${b2}-renamed`],
      C: [`copy /${a2}`, `copy /${c1}`, "copy /coll/new/n1"].sort(),
    });
    await expectDisksAgree(e, { A: [A], B: [B], C: [C2] }, { A: pending.A, B: pending.B });

    // 5. The weekly swap: C comes back (C′ goes away) and catches up from the sources.
    const swap = await e.run([C], ...RESERVE);
    expect(swap.exitCode).toBe(0);
    expect(swap.json.deferred.applied).toBe(3);
    expect(diffTrees(C, C2)).toBe("");
    // Day 2, on C: changes queued for C′.
    renameSync(e.path("coll/new/n1"), e.path("coll/new/n1-renamed"));
    writeFile(e, "coll/new/n2", seededBytes(FILE, 1003));
    const day2 = await e.run([C], ...RESERVE);
    expect(day2.exitCode).toBe(0);
    pending = await pendingByDisk(e);
    expect(pending.C).toEqual(["rename /coll/new/n1 -> /coll/new/n1-renamed", "copy /coll/new/n2"]);
    await expectDisksAgree(e, { A: [A], B: [B], C: [C] }, { A: pending.A, B: pending.B });

    // Losing the host: the catalog is rebuilt from C, deferred actions included.
    rmSync(e.db);
    const rebuilt = await e.cli(["catalog", "rebuild", C, "--json"]);
    expect(rebuilt.exitCode).toBe(0);
    expect(rebuilt.json.from.label).toBe("C");
    expect(await pendingByDisk(e)).toEqual(pending);

    // 6. C fills up: a new disk D continues, and gets its twin D′.
    // Its room for the catalogs' growth (the host catalog's copy, a journal) is kept free too: 2.4 MB hold what C does not.
    const D = await e.initDisk("D", 2_400_000);
    const more: TreeSpec = {};
    for (let i = 0; i < 25; i++) more[`m${i}`] = { bytes: FILE, seed: 2000 + i };
    for (const [name, node] of Object.entries(more)) writeFile(e, `coll/more/${name}`, seededBytes(FILE, (node as { seed: number }).seed));
    const spanning = await e.run([C, D], ...RESERVE);
    expect(spanning.exitCode).toBe(0);
    expect(spanning.json.new).toBe(25);
    expect(spanning.json.filledUp).toEqual(["C"]);
    expect((await diskOfEachPath(e)).get(e.path("coll/more/m24"))).toBe("D");
    const D2 = e.diskDir("D2", 2_400_000);
    expect((await e.cli(["disk", "clone", "D", D2], [D])).exitCode).toBe(0);
    expect(diffTrees(D, D2)).toBe("");

    // Restore across disks: what C and D hold now, then the rest with A and B.
    const to = join(e.root, "restored");
    const partial = await e.cli(["restore", e.source, "--to", to, "--json"], [C, D]);
    expect(partial.exitCode).toBe(3);
    expect(partial.json.disksNeeded.map((disk: { label: string }) => disk.label).sort()).toEqual(["A", "B"]);
    expect(partial.stdout + partial.stderr).toContain('disk "A"');

    // Everything mounted: every queue is applied, every disk verifies, twins are identical.
    const all = [A, B, C, C2, D, D2];
    const verified = await e.cli(["verify", "--json"], all);
    expect(verified.exitCode).toBe(0);
    expect(await pendingByDisk(e)).toEqual({});
    expect(diffTrees(C, C2)).toBe("");
    expect(diffTrees(D, D2)).toBe("");
    await expectDisksAgree(e, { A: [A], B: [B], C: [C, C2], D: [D, D2] }, {});
    const rest = await e.cli(["restore", e.source, "--to", to, "--json"], all);
    expect(rest.exitCode).toBe(0);
    expect(rest.json.skipped).toBe(partial.json.restored);
    expect(filesOf(snapshotTree(join(to, e.source)))).toEqual(filesOf(snapshotTree(e.source)));
  });
});

describe("issue 11.4: a duplicate whose holder the same batch replaces, on another written disk", () => {
  test("issue 11.4: a file moved away while a new file takes its old name (on the disk new data goes to) is a hardlink of the old name's data on its disk, not a second copy; both restore", async () => {
    const e = (env = await multiDiskEnv({ dir: { "a.bin": { bytes: FILE, seed: 1 } } }));
    const A = await e.initDisk("A", 2_000_000);
    expect((await e.run([A], ...RESERVE)).exitCode).toBe(0);
    const B = await e.initDisk("B", 2_000_000);
    // mv dir/a.bin dir/b.bin, then a new file under the old name; B is named first, so new data goes there.
    renameSync(e.path("dir/a.bin"), e.path("dir/b.bin"));
    writeFile(e, "dir/a.bin", "a new file under the old name\n");
    const run = await e.run([B, A], ...RESERVE);
    expect(run.json.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
    // b.bin is the old a.bin's content: a hardlink made on A before the batch's changes, nothing of it copied.
    expect(run.json).toMatchObject({ new: 1, modified: 1, deduplicated: 1, deleted: 0, bytesCopied: "a new file under the old name\n".length });
    expect((await whereis(e, "dir/a.bin")).disk).toBe("B");
    expect((await whereis(e, "dir/b.bin")).disk).toBe("A");
    await expectDisksAgree(e, { A: [A], B: [B] }, await pendingByDisk(e));
    expect((await e.cli(["verify", "--json"], [A, B])).exitCode).toBe(0);
    const to = join(e.root, "restored");
    const restored = await e.cli(["restore", e.source, "--to", to, "--json"], [A, B]);
    expect(restored.exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, e.source)))).toEqual(filesOf(snapshotTree(e.source)));
  });
});
