import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * ARCHITECTURE.md has one line per file. This test keeps it true: every
 * tracked file of the code, tests, benchmarks and scripts (and every top-level
 * file) has its line, and no line names a file that is not there. Generated or
 * data folders (drizzle-kit migrations, test fixtures) may be one line for the
 * folder.
 */
const ROOT = join(import.meta.dir, "..");
const COVERED_FOLDERS = ["lib/", "bin/", "pipelines/", "bench/", "scripts/", "test/", ".ci/"];
const FOLDER_LINE_ALLOWED = /(^|\/)(migrations|fixtures)(\/|$)/;

/** The tracked files, from git (the test runs in a checkout, as CI does). */
function trackedFiles(): string[] | string {
  const listed = Bun.spawnSync(["git", "ls-files", "-z"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (listed.exitCode !== 0) return `git ls-files failed: ${listed.stderr.toString().trim()}`;
  return listed.stdout.toString().split("\0").filter((path) => path !== "");
}

function needsALine(path: string): boolean {
  return !path.includes("/") || COVERED_FOLDERS.some((folder) => path.startsWith(folder));
}

/**
 * The paths a line of ARCHITECTURE.md is about: the backticked names before
 * its " — " (`a.ts`, `b.ts` — …). Paths named in the description after it are
 * not the line's own.
 */
function pathsOfLines(markdown: string): { path: string; line: number }[] {
  const found: { path: string; line: number }[] = [];
  markdown.split("\n").forEach((text, index) => {
    if (!text.startsWith("- `")) return;
    const head = text.split(" — ")[0]!;
    for (const match of head.matchAll(/`([^`]+)`/g)) found.push({ path: match[1]!, line: index + 1 });
  });
  return found;
}

/** What is wrong between the tracked files and the lines, one message each. */
function architectureProblems(files: readonly string[], markdown: string): string[] {
  const problems: string[] = [];
  const tracked = new Set(files);
  const lines = pathsOfLines(markdown);
  const filesNamed = new Set<string>();
  const foldersNamed: string[] = [];
  for (const { path, line } of lines) {
    if (path.endsWith("/")) {
      if (!FOLDER_LINE_ALLOWED.test(path)) problems.push(`ARCHITECTURE.md:${line}: \`${path}\` is a folder; give each of its files a line`);
      else if (!files.some((file) => file.startsWith(path))) problems.push(`ARCHITECTURE.md:${line}: \`${path}\` holds no tracked file`);
      foldersNamed.push(path);
    } else {
      if (!tracked.has(path)) problems.push(`ARCHITECTURE.md:${line}: \`${path}\` names no tracked file`);
      if (filesNamed.has(path)) problems.push(`ARCHITECTURE.md:${line}: \`${path}\` has a line already`);
      filesNamed.add(path);
    }
  }
  for (const file of files) {
    if (!needsALine(file) || filesNamed.has(file)) continue;
    if (foldersNamed.some((folder) => file.startsWith(folder))) continue;
    problems.push(`${file} has no line in ARCHITECTURE.md`);
  }
  return problems;
}

describe("ARCHITECTURE.md", () => {
  const files = trackedFiles();
  const markdown = readFileSync(join(ROOT, "ARCHITECTURE.md"), "utf8");

  test.skipIf(typeof files === "string")("every tracked file has its line, and every line names a tracked file", () => {
    expect(architectureProblems(files as string[], markdown)).toEqual([]);
  });
  if (typeof files === "string") console.log(`skipped the ARCHITECTURE.md check: ${files} (not a git checkout)`);

  test("the check names a file without a line, a line without a file, a folder line and a duplicate", () => {
    const doc = [
      "- `lib/a.ts` — a.",
      "- `lib/gone.ts`, `bin/b.ts` — gone, b.",
      "- `lib/stages/` — a folder.",
      "- `lib/x/migrations/` — generated.",
      "- `lib/a.ts` — again; `lib/named-in-text.ts` is not a line of its own.",
    ].join("\n");
    const tracked = ["lib/a.ts", "bin/b.ts", "lib/c.ts", "lib/stages/s.ts", "lib/x/migrations/0000.sql", "README.md", "docs/other.md"];
    expect(architectureProblems(tracked, doc)).toEqual([
      "ARCHITECTURE.md:2: `lib/gone.ts` names no tracked file",
      "ARCHITECTURE.md:3: `lib/stages/` is a folder; give each of its files a line",
      "ARCHITECTURE.md:5: `lib/a.ts` has a line already",
      "lib/c.ts has no line in ARCHITECTURE.md",
      "README.md has no line in ARCHITECTURE.md",
    ]);
  });
});
