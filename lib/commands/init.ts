import { accessSync, constants, existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { CONFIG_FILE, isConfigKey, loadSettings, type Flags } from "../config.ts";
import { readDiskLabel } from "../disk/disk-label.ts";
import { releaseDiskMounts, requireCipherTool } from "../disk/unlock.ts";
import { ExitCode, UsageError, type ExitCode as ExitCodeValue } from "../errors.ts";
import { writeFileAtomic } from "../fs/atomic.ts";
import { generatePassword, readKeyFile } from "../secrets/key-source.ts";
import { isCipherName } from "../system/cipher-tool.ts";
import { runBlaineChild } from "../system/blaine-child.ts";
import { hasProgram } from "../system/exec.ts";
import { initDisk } from "./disk-init.ts";
import type { Output } from "./output.ts";

/** Everything `blaine init` asks; each answer has a flag of the same name. */
export interface InitAnswers {
  readonly sources: readonly string[];
  readonly exclude: readonly string[];
  readonly snapraidConf: string | undefined;
  readonly db: string;
  readonly disk: string;
  readonly label: string;
  readonly encrypt: "gocryptfs" | "securefs" | undefined;
  readonly keyfile: string | undefined;
  /** "off" or a percentage such as "10%". */
  readonly parity: string;
  readonly parityEngine: "builtin" | "parpar" | "par2";
  readonly copier: "builtin" | "dc3dd";
}

/** Who computes parity: Blaine's own PAR2 engine, or ParPar / par2cmdline when installed. */
export const PARITY_ENGINES = ["builtin", "parpar", "par2"] as const;
export const LABEL_PATTERN = /^[\w.+-]+$/u;

/**
 * Checks of single answers, shared by the prompts (shown under the field)
 * and by `--yes` (thrown as usage errors naming the flag). Each returns a
 * message, or undefined when the answer is fine.
 */
export const checks = {
  source(path: string): string | undefined {
    const full = resolve(path);
    if (!path.trim()) return "give a directory";
    if (!existsSync(full)) return `${full} does not exist`;
    if (!statSync(full).isDirectory()) return `${full} is not a directory`;
    try {
      accessSync(full, constants.R_OK | constants.X_OK);
    } catch {
      return `${full} is not readable`;
    }
    return undefined;
  },
  /** A file to be created: its directory must exist (or be creatable) and be writable. */
  writableFile(path: string): string | undefined {
    if (!path.trim()) return "give a file name";
    const full = resolve(path);
    if (existsSync(full) && statSync(full).isDirectory()) return `${full} is a directory`;
    return writableDirectory(dirname(full));
  },
  disk(path: string): string | undefined {
    if (!path.trim()) return "give a directory";
    const full = resolve(path);
    if (existsSync(full)) {
      if (!statSync(full).isDirectory()) return `${full} is not a directory`;
      try {
        if (readDiskLabel(full)) return `${full} is already an archive disk`;
      } catch (error) {
        return String(error);
      }
    }
    return writableDirectory(full);
  },
  label(value: string): string | undefined {
    if (!value.trim()) return "give a label";
    return LABEL_PATTERN.test(value) ? undefined : 'use letters, digits, ".", "_", "+" or "-"';
  },
  cipher(name: string): string | undefined {
    if (!isCipherName(name)) return `"${name}" is not gocryptfs or securefs`;
    if (!hasProgram(name)) return `${name} is not installed (apt-get install ${name})`;
    if (!existsSync("/dev/fuse")) return "/dev/fuse is missing: FUSE file systems cannot be mounted here";
    return undefined;
  },
  keyfile(path: string): string | undefined {
    if (!path.trim()) return "give a file name";
    const full = resolve(path);
    if (!existsSync(full)) return checks.writableFile(full);
    try {
      readKeyFile(full);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  },
  parity(value: string): string | undefined {
    if (value === "off") return undefined;
    const match = /^(\d+(?:\.\d+)?)%$/.exec(value.trim());
    if (!match || Number(match[1]) <= 0 || Number(match[1]) > 100) return `"${value}" is not off or a percentage such as 10%`;
    return undefined;
  },
  parityEngine(name: string): string | undefined {
    if (!PARITY_ENGINES.includes(name as (typeof PARITY_ENGINES)[number])) return `"${name}" is not builtin, parpar or par2`;
    if (name !== "builtin" && !hasProgram(name)) return `${name} is not installed${name === "par2" ? " (apt-get install par2)" : " (npm install -g @animetosho/parpar)"}`;
    return undefined;
  },
  copier(name: string): string | undefined {
    if (name !== "builtin" && name !== "dc3dd") return `"${name}" is not builtin or dc3dd`;
    if (name === "dc3dd" && !hasProgram("dc3dd")) return "dc3dd is not installed (apt-get install dc3dd)";
    return undefined;
  },
};

function writableDirectory(dir: string): string | undefined {
  // The nearest existing ancestor decides: missing directories are created.
  let existing = dir;
  while (!existsSync(existing)) existing = dirname(existing);
  if (!statSync(existing).isDirectory()) return `${existing} is not a directory`;
  try {
    accessSync(existing, constants.W_OK);
  } catch {
    return `${existing} is not writable`;
  }
  return undefined;
}

function list(value: unknown): string[] {
  if (value === undefined || value === null || value === false) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/** Answers given as flags (`--source`, `--db`, …), unchecked; missing ones undefined. */
export function answersFromFlags(flags: Flags): Partial<Record<keyof InitAnswers, unknown>> {
  return {
    sources: list(flags.source).length > 0 ? list(flags.source) : undefined,
    exclude: flags.exclude === undefined ? undefined : list(flags.exclude),
    snapraidConf: flags.snapraidConf,
    db: flags.db,
    disk: flags.disk,
    label: flags.label,
    encrypt: flags.encrypt,
    keyfile: flags.keyfile === undefined ? undefined : list(flags.keyfile)[0],
    parity: flags.parity === undefined ? undefined : String(flags.parity),
    parityEngine: flags.parityEngine,
    copier: flags.copier,
  };
}

/** `--yes`: every answer from flags (defaults where optional), each checked; the first problem is a usage error naming its flag. */
export function answersForYes(flags: Flags): InitAnswers {
  const given = answersFromFlags(flags);
  const missing = (["sources", "db", "disk", "label"] as const).filter((key) => given[key] === undefined);
  if (missing.length > 0) {
    const names = { sources: "--source DIR", db: "--db FILE", disk: "--disk DIR", label: "--label NAME" };
    throw new UsageError(`blaine init --yes needs ${missing.map((key) => names[key]).join(", ")}`);
  }
  const fail = (flag: string, message: string | undefined) => {
    if (message) throw new UsageError(`${flag}: ${message}`);
  };
  const sources = (given.sources as string[]).map((path) => resolve(path));
  for (const source of sources) fail(`--source ${source}`, checks.source(source));
  const answers: InitAnswers = {
    sources,
    exclude: (given.exclude as string[] | undefined) ?? [],
    snapraidConf: given.snapraidConf === undefined ? undefined : resolve(String(given.snapraidConf)),
    db: resolve(String(given.db)),
    disk: resolve(String(given.disk)),
    label: String(given.label),
    encrypt: given.encrypt as InitAnswers["encrypt"],
    keyfile: given.keyfile === undefined ? undefined : resolve(String(given.keyfile)),
    parity: (given.parity as string | undefined) ?? "off",
    parityEngine: (given.parityEngine as InitAnswers["parityEngine"] | undefined) ?? "builtin",
    copier: (given.copier as InitAnswers["copier"] | undefined) ?? "builtin",
  };
  if (answers.snapraidConf && !existsSync(answers.snapraidConf)) fail("--snapraid-conf", `${answers.snapraidConf} does not exist`);
  fail("--db", checks.writableFile(answers.db));
  fail("--disk", checks.disk(answers.disk));
  fail("--label", checks.label(answers.label));
  if (answers.encrypt !== undefined) {
    fail("--encrypt", checks.cipher(answers.encrypt));
    if (!answers.keyfile && !process.env.BLAINE_PASSWORD) fail("--encrypt", "give --keyfile FILE (created when missing) or set BLAINE_PASSWORD");
  }
  if (answers.keyfile) fail("--keyfile", checks.keyfile(answers.keyfile));
  fail("--parity", checks.parity(answers.parity));
  if (answers.parity !== "off") fail("--parity-engine", checks.parityEngine(answers.parityEngine));
  fail("--copier", checks.copier(answers.copier));
  return answers;
}

export interface InitResult {
  readonly exitCode: ExitCodeValue;
  readonly configFile: string;
  readonly keyfileCreated: boolean;
  readonly answers: InitAnswers;
}

/**
 * Carries out checked answers: a new key file (if one is needed and
 * missing), the first disk, then blaine.toml, written last and atomically,
 * so an interruption never leaves a configuration pointing at nothing.
 */
export async function applyInit(answers: InitAnswers, configFile: string, output: Output): Promise<InitResult> {
  let keyfileCreated = false;
  if (answers.keyfile && !existsSync(answers.keyfile)) {
    mkdirSync(dirname(answers.keyfile), { recursive: true, mode: 0o700 });
    writeFileAtomic(answers.keyfile, `${generatePassword()}\n`, 0o600);
    keyfileCreated = true;
    output.say(`Created the key file ${answers.keyfile} (keep a copy somewhere safe: without it the encrypted disks cannot be read).`);
  }
  if (answers.encrypt) requireCipherTool(answers.encrypt, "--encrypt");
  mkdirSync(dirname(answers.db), { recursive: true });
  const settings = loadSettings({ db: answers.db, keyfile: answers.keyfile, json: output.json });
  await initDisk(settings, { dir: answers.disk, label: answers.label, encrypt: answers.encrypt }, output);
  writeFileAtomic(configFile, renderConfig(answers, configFile));
  output.say(`Wrote ${configFile}. Archive with: blaine run${resolve(dirname(configFile)) === process.cwd() ? "" : ` --config ${configFile}`}`);
  return { exitCode: ExitCode.ok, configFile, keyfileCreated, answers };
}

const quote = (value: string) => JSON.stringify(value);
const array = (values: readonly string[]) => `[${values.map(quote).join(", ")}]`;

/**
 * blaine.toml with a comment on every key. Keys this Blaine's `run` does not
 * know yet (parity, until the parity feature lands) are written commented
 * out, so the file always loads.
 */
export function renderConfig(answers: InitAnswers, configFile: string): string {
  const lines = [
    `# ${configFile}, written by blaine init on ${new Date().toISOString().slice(0, 10)}.`,
    "# Every key is also a flag of the same name (flags win). Relative paths are relative to this file.",
    "",
    "# The host catalog: what is archived, on which disk (SQLite). Keep a backup of it; each disk also holds a copy.",
    `db = ${quote(answers.db)}`,
    "",
    "# What to archive.",
    `sources = ${array(answers.sources)}`,
    "",
    "# Names or paths never archived: a pattern without / matches a name at any depth; a trailing / means directories only.",
    `exclude = ${array(answers.exclude)}`,
  ];
  if (answers.snapraidConf) lines.push("", "# Also exclude what SnapRAID excludes.", `snapraid-conf = ${quote(answers.snapraidConf)}`);
  lines.push("", `# The archive disk (disk "${answers.label}"): where it is mounted.`, `dest = ${quote(answers.disk)}`);
  if (answers.keyfile) {
    lines.push(
      "",
      `# The key of the encrypted disks (${answers.encrypt ?? "gocryptfs/securefs"}): its first line is the password.`,
      "# A LOST KEY LOSES THE ARCHIVE: keep a copy off this machine (on paper, or in a password manager).",
      `keyfile = ${quote(answers.keyfile)}`,
    );
  } else if (answers.encrypt) {
    lines.push("", `# The disk is encrypted with ${answers.encrypt}; its password comes from BLAINE_PASSWORD or a prompt.`);
  }
  lines.push("", "# How files are copied: builtin (read, hash and write in one pass) or dc3dd.", `copier = ${quote(answers.copier)}`);
  const parityLines = [`parity = ${quote(answers.parity)}`, `parity-engine = ${quote(answers.parityEngine)}`];
  lines.push("", "# Parity: PAR2 recovery data on each disk, as a share of its data (\"off\" for none), and the program that makes it.");
  if (isConfigKey("parity") && isConfigKey("parity-engine")) lines.push(...parityLines);
  else lines.push("# (this version of blaine run does not take parity settings yet)", ...parityLines.map((line) => `# ${line}`));
  return `${lines.join("\n")}\n`;
}

/** The blaine.toml `blaine init` writes: --config FILE, else ./blaine.toml. */
export function initConfigFile(flags: Flags): string {
  return resolve(String(flags.config ?? CONFIG_FILE));
}

/**
 * `blaine init`: on a terminal, the prompts (every answer given as a flag is
 * not asked); with --yes, flags only. Then the key file, the disk and
 * blaine.toml; on a terminal, a dry run is offered at the end.
 */
export async function runInit(flags: Flags, output: Output): Promise<InitResult> {
  const configFile = initConfigFile(flags);
  let answers: InitAnswers;
  const prompts = await import("./init-prompts.ts");
  if (flags.yes) {
    if (existsSync(configFile) && !flags.force) throw new UsageError(`${configFile} exists: give --force to replace it, or --config FILE to write another`);
    answers = answersForYes(flags);
  } else {
    if (!process.stdin.isTTY || !process.stdout.isTTY) {
      throw new UsageError("blaine init asks its questions on a terminal; without one: blaine init --yes --source DIR… --db FILE --disk DIR --label NAME [--encrypt CIPHER --keyfile FILE] [--parity PERCENT|off]");
    }
    answers = await prompts.promptInitAnswers(flags, configFile);
  }
  const result = await applyInit(answers, configFile, output);
  if (!flags.yes && (await prompts.offerDryRun())) {
    // The dry run is a command of its own: it opens the new disk as any later run will.
    await releaseDiskMounts();
    await runBlaineChild(["run", "--dry-run", "--config", configFile]);
  }
  output.result(result);
  return result;
}

/**
 * What `blaine run` lacks when there is no blaine.toml and the flags do not
 * say it all; undefined when it has a catalog, a disk and sources.
 */
export function missingForRun(settings: { configFile?: string; db?: string; dest: readonly string[]; sources: readonly string[] }): string | undefined {
  if (settings.configFile) return undefined;
  const missing = [
    ...(settings.db ? [] : ["no catalog (--db FILE)"]),
    ...(settings.dest.length > 0 ? [] : ["no archive disk (--dest DIR)"]),
    ...(settings.sources.length > 0 ? [] : ["no sources (SOURCE…)"]),
  ];
  return missing.length > 0 ? `${missing.join(", ")} and no ${CONFIG_FILE}` : undefined;
}
