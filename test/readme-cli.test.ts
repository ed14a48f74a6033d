import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MIRROR_VERBS } from "../lib/mirror/cli.ts";
import { VOLUME_USAGE } from "../lib/volume/cli.ts";
import { blaine } from "./helpers/cli.ts";

/**
 * README.md is the CLI reference: every command `blaine --help` lists, every
 * option its own `--help` lists, and every verb of the products' commands has
 * its place there. The help is asked of the real `blaine`, so an option added
 * to the CLI without a word in the README fails here.
 */
const README = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");

/** The commands and their one-line descriptions from `blaine --help`. */
function commandsOf(help: string): { name: string; description: string }[] {
  const section = help.split("Commands:")[1]?.split("\n\n")[0] ?? "";
  return section
    .split("\n")
    .map((line) => /^\s+(\S+)(?:\s+[<[][^\s]*)*\s{2,}(.*)$/.exec(line))
    .flatMap((match) => (match ? [{ name: match[1]!, description: match[2]! }] : []));
}

/** The long options a command's `--help` lists, less cac's own. */
function optionsOf(help: string): string[] {
  const section = help.split("Options:")[1] ?? "";
  return [...section.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((match) => match[1]!).filter((option) => option !== "--help" && option !== "--version");
}

/** Where the README speaks of a flag as a flag: `--name` followed by a space, `=`, a backtick, `]`, `|`, `)` or a line's end. */
function readmeMentions(option: string): boolean {
  return new RegExp(`${option.replace(/[-]/g, "\\-")}(?![a-z0-9-])`).test(README);
}

describe("README.md's CLI reference", async () => {
  const top = await blaine(["--help"]);
  const commands = commandsOf(top.stdout);

  test("blaine --help lists the commands this test expects to read", () => {
    expect(top.exitCode).toBe(0);
    expect(commands.map((command) => command.name)).toEqual(expect.arrayContaining(["run", "disk", "verify", "restore", "image", "par2", "volume", "mirror"]));
  });

  test("every command blaine --help lists is in the README as `blaine COMMAND`", () => {
    const missing = commands.map((command) => command.name).filter((name) => !README.includes(`blaine ${name}`));
    expect(missing).toEqual([]);
  });

  test("every option each command's --help lists is in the README", async () => {
    const missing: string[] = [];
    for (const { name } of commands) {
      if (name === "par2") continue; // par2cmdline's options: checked against its usage below
      const help = await blaine([name, "--help"]);
      for (const option of optionsOf(help.stdout)) if (!readmeMentions(option)) missing.push(`blaine ${name} ${option}`);
    }
    expect(missing).toEqual([]);
  });

  test("every option of blaine par2's usage is in the README's par2 section", async () => {
    const usage = await blaine(["par2", "-h"]);
    const section = README.split("### `blaine par2`")[1]?.split("\n### ")[0] ?? "";
    const options = [...new Set([...usage.stdout.matchAll(/(?<![\w-])(-[A-Za-z]{1,2})(?![\w-])/g)].map((match) => match[1]!))];
    expect(options.length).toBeGreaterThan(15);
    // Each has a row of the options table (`| \`-r PERCENT\` |`, `| \`-q\`, \`-qq\` …`), not only the usage lines copied above it.
    const hasRow = (option: string) => section.split("\n").some((line) => line.startsWith("| ") && new RegExp(`(\\| |, )\`${option}[\` A-Z]`).test(line));
    expect(options.filter((option) => !hasRow(option))).toEqual([]);
  });

  test("every file of this repository the README names exists", () => {
    const named = [...new Set([...README.matchAll(/(?<![\w/.-])((?:lib|bin|pipelines|scripts|bench|test|\.ci)\/[\w./-]*\w)/g)].map((match) => match[1]!))];
    expect(named.length).toBeGreaterThan(5);
    expect(named.filter((path) => !existsSync(join(import.meta.dir, "..", path)))).toEqual([]);
  });

  test("every verb of blaine image, volume and mirror has its row in a table", () => {
    const imageActions = /image ([a-z|]+)/.exec(commands.find((command) => command.name === "image")?.description ?? "")?.[1]?.split("|") ?? [];
    expect(imageActions.length).toBeGreaterThan(5);
    // A table row begins with the verb, or names it after another (`rm …`, `protect VERSION`; `mount DIR` / `unmount`).
    const hasRow = (verb: string) => new RegExp(`(\\| |, |/ )\`${verb}[\` ]`).test(README);
    const missing = [
      ...imageActions.filter((action) => !hasRow(action)).map((action) => `image ${action}`),
      ...Object.keys(VOLUME_USAGE).filter((verb) => !hasRow(verb)).map((verb) => `volume ${verb}`),
      ...MIRROR_VERBS.filter((verb) => !hasRow(verb)).map((verb) => `mirror ${verb}`),
    ];
    expect(missing).toEqual([]);
  });
});
