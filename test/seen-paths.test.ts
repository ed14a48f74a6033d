import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { ArchiveCatalog } from "../lib/archive/catalog/archive-catalog.ts";
import { comparePaths } from "../lib/catalog/path-order.ts";
import { SeenPaths } from "../lib/archive/catalog/seen-paths.ts";
import { seededRandom, tempDir } from "./helpers/fixture.ts";

setDefaultTimeout(120_000);

/** Names whose order is easy to get wrong: a file beside a directory of the same stem, code points above U+FFFF and in U+E000–U+FFFF. */
const NAMES = ["a", "b.txt", "b", "c d", "\u{1F600}.jpg", "\uF8FF.jpg", "-x", "é", "z"];
/** /s1 and /s10 share a prefix; /other is archived but never a source. */
const ROOTS = ["/s1", "/s10", "/s2", "/other"];

function makePaths(next: () => number, count: number): string[] {
  const paths = new Set<string>();
  while (paths.size < count) {
    const depth = 1 + Math.floor(next() * 3);
    const parts = [ROOTS[Math.floor(next() * ROOTS.length)]];
    for (let d = 0; d < depth; d++) parts.push(`${NAMES[Math.floor(next() * NAMES.length)]}${Math.floor(next() * 40)}`);
    paths.add(parts.join("/"));
  }
  // A directory that is also a file elsewhere in the walk order would not be a tree: keep only leaves.
  const all = [...paths];
  return all.filter((path) => !all.some((other) => other.startsWith(`${path}/`)));
}

let cleanup: (() => void) | undefined;
afterEach(() => {
  cleanup?.();
  cleanup = undefined;
});

function catalogWith(archived: readonly { path: string; diskId: string }[]): ArchiveCatalog {
  const dir = tempDir();
  const catalog = ArchiveCatalog.open(join(dir.path, "host.db"), { create: true });
  cleanup = () => {
    catalog.close();
    dir.cleanup();
  };
  const db = catalog.sqlite;
  for (const [id, label] of [["disk-a", "A"], ["disk-b", "B"]]) db.query("INSERT INTO disks (id, label, created_at) VALUES (?, ?, 0)").run(id, label);
  const insert = db.prepare(
    "INSERT INTO files (path, kind, size, mtime_ms, mode, dev, ino, hash, link_target, disk_id, archived_at) VALUES (?, 'file', ?, 1000, 420, 1, ?, ?, NULL, ?, 0)",
  );
  db.transaction(() => archived.forEach((file, i) => insert.run(file.path, i, i + 1, `sha1:${i}`, file.diskId)))();
  return catalog;
}

interface Scenario {
  readonly seed: number;
  readonly sources: readonly string[];
  /** How the walk orders what it visits. */
  readonly order: "sorted" | "sources in reverse" | "overlapping second pass";
  /** Rows per catalog window: a few make the walk cross hundreds of windows and gaps. */
  readonly windowRows: number;
}

function runScenario({ seed, sources, order, windowRows }: Scenario): void {
  const next = seededRandom(seed);
  const paths = makePaths(next, 4000);
  const archived = paths.filter(() => next() < 0.8).map((path) => ({ path, diskId: next() < 0.9 ? "disk-a" : "disk-b" }));
  const catalog = catalogWith(archived);
  const underSources = (path: string) => sources.some((source) => path === source || path.startsWith(`${source}/`));
  // The walk meets most archived paths of its sources, and every path never archived (new files).
  const archivedPaths = new Set(archived.map((file) => file.path));
  const walked = paths.filter((path) => underSources(path) && (!archivedPaths.has(path) || next() < 0.9)).sort(comparePaths);
  let visits: string[];
  if (order === "sorted") visits = walked;
  else if (order === "sources in reverse") visits = [...sources].reverse().flatMap((source) => walked.filter((path) => path.startsWith(`${source}/`)));
  else visits = [...walked, ...walked.filter(() => next() < 0.3)];

  const seen = new SeenPaths(catalog, windowRows);
  const unreadable = walked[Math.floor(walked.length / 2)].split("/").slice(0, 3).join("/");
  seen.keepUnreadable(unreadable);
  // The run's own commits remove the old name of a rename while the walk goes on.
  const renamedAway = archived.filter((file) => underSources(file.path) && !walked.includes(file.path)).slice(0, 5).map((file) => file.path);
  visits.forEach((path, i) => {
    const row = seen.visit(path);
    expect(row?.path).toBe(archivedPaths.has(path) ? path : undefined);
    if (i === Math.floor(visits.length / 3)) for (const gone of renamedAway) catalog.sqlite.query("DELETE FROM files WHERE path = ?").run(gone);
  });
  seen.flush();

  const visited = new Set(visits);
  const expected = archived
    .filter((file) => file.diskId === "disk-a" && underSources(file.path) && !visited.has(file.path) && !renamedAway.includes(file.path))
    .filter((file) => file.path !== unreadable && !file.path.startsWith(`${unreadable}/`))
    .map((file) => file.path)
    .sort(comparePaths);
  const unseen = [...seen.unseen(sources, ["disk-a"])].map((file) => file.path);
  expect(unseen.length).toBeGreaterThan(0);
  expect(unseen).toEqual(expected);
}

describe("SeenPaths: archived paths the walk did not visit", () => {
  test.each([
    { seed: 1, sources: ["/s1"], order: "sorted", windowRows: 1024 },
    { seed: 2, sources: ["/s1", "/s10", "/s2"], order: "sorted", windowRows: 1024 },
    { seed: 3, sources: ["/s10", "/s2"], order: "sorted", windowRows: 1024 },
    { seed: 4, sources: ["/s1", "/s2"], order: "sources in reverse", windowRows: 1024 },
    { seed: 5, sources: ["/s1", "/s10"], order: "overlapping second pass", windowRows: 1024 },
    { seed: 6, sources: ["/s2"], order: "overlapping second pass", windowRows: 1024 },
    { seed: 7, sources: ["/s1", "/s10", "/s2"], order: "sorted", windowRows: 1 },
    { seed: 8, sources: ["/s1", "/s2"], order: "sorted", windowRows: 3 },
    { seed: 9, sources: ["/s1", "/s2"], order: "sources in reverse", windowRows: 2 },
    { seed: 10, sources: ["/s10"], order: "overlapping second pass", windowRows: 5 },
  ] satisfies Scenario[])("seed $seed, sources $sources, walk $order, windows of $windowRows rows", (scenario) => runScenario(scenario));

  test("a walk that visits nothing leaves every archived file of its sources unseen", () => {
    const catalog = catalogWith([
      { path: "/s1/a", diskId: "disk-a" },
      { path: "/s1", diskId: "disk-a" },
      { path: "/s10/b", diskId: "disk-a" },
      { path: "/s1/sub/c", diskId: "disk-a" },
    ]);
    const seen = new SeenPaths(catalog);
    expect([...seen.unseen(["/s1"], ["disk-a"])].map((file) => file.path)).toEqual(["/s1", "/s1/a", "/s1/sub/c"]);
  });

  test("a walk that jumps over thousands of archived rows (an excluded directory) leaves them all unseen", () => {
    const name = (i: number) => String(i).padStart(4, "0");
    const archived = [
      ...Array.from({ length: 3000 }, (_, i) => ({ path: `/s1/a/${name(i)}`, diskId: "disk-a" })),
      ...Array.from({ length: 50 }, (_, i) => ({ path: `/s1/b/${name(i)}`, diskId: "disk-a" })),
    ];
    const catalog = catalogWith(archived);
    const seen = new SeenPaths(catalog);
    const skipped = (i: number) => i >= 100 && i < 2900;
    for (let i = 0; i < 3000; i++) if (!skipped(i)) expect(seen.visit(`/s1/a/${name(i)}`)?.path).toBe(`/s1/a/${name(i)}`);
    for (let i = 0; i < 50; i++) seen.visit(`/s1/b/${name(i)}`);
    const unseen = [...seen.unseen(["/s1"], ["disk-a"])].map((file) => file.path);
    expect(unseen).toEqual(Array.from({ length: 2800 }, (_, i) => `/s1/a/${name(i + 100)}`));
  });

  test("a source that is a single file", () => {
    const catalog = catalogWith([
      { path: "/s1/a", diskId: "disk-a" },
      { path: "/s1/a.b", diskId: "disk-a" },
      { path: "/s1/b", diskId: "disk-a" },
    ]);
    const seen = new SeenPaths(catalog);
    expect(seen.visit("/s1/b")?.path).toBe("/s1/b");
    expect([...seen.unseen(["/s1/a", "/s1/b"], ["disk-a"])].map((file) => file.path)).toEqual(["/s1/a"]);
  });
});
