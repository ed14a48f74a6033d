import { accessSync, constants, existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { CONFIG_FILE, list, singleFlag, type Flags } from "../../config.ts";
import { loadSettings, parseCopier, type Settings } from "../settings.ts";
import { readDiskLabel } from "../disk/disk-label.ts";
import { parseParityEngine, parseParityPercent, type ParityEngine } from "../disk/parity-store.ts";
import { BLAINE_DIR } from "../disk/layout.ts";
import { cipherDirOf, releaseDiskMounts, requireCipherTool } from "../disk/unlock.ts";
import { ExitCode, UsageError, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { parseSize } from "../../size.ts";
import { writeFileAtomic } from "../../fs/atomic.ts";
import { generatePassword, PASSWORD_VARIABLE, readKeyFile } from "../../secrets/key-source.ts";
import { isCipherName } from "../../system/cipher-tool.ts";
import { runBlaineChild } from "../../system/blaine-child.ts";
import { hasProgram } from "../../system/exec.ts";
import { notInstalled } from "../../system/tool-versions.ts";
import { initDisk, LABEL_PATTERN } from "./disk-init.ts";
import type { Output } from "../../cli/output.ts";

/** Everything `blaine init` asks; each answer has a flag of the same name. */
export interface InitAnswers {
  readonly sources: readonly string[];
  readonly exclude: readonly string[];
  readonly snapraidConf: string | undefined;
  readonly db: string;
  readonly disk: string;
  readonly label: string;
  /** The most data the first disk may hold, in bytes; undefined: the whole disk. */
  readonly capacity: number | undefined;
  readonly encrypt: "gocryptfs" | "securefs" | undefined;
  readonly keyfile: string | undefined;
  /** "off" or a percentage such as "10%". */
  readonly parity: string;
  readonly parityEngine: ParityEngine;
  readonly copier: Settings["copier"];
}

/**
 * A parser's complaint without its leading flag name ("--parity: "), for
 * showing under a prompt; `fail` puts the flag back for a usage error.
 */
function complaint(parse: () => unknown): string | undefined {
  try {
    parse();
    return undefined;
  } catch (error) {
    return (error as Error).message.replace(/^--[\w-]+: /, "");
  }
}

/** `blaine init`'s way of writing a parity answer: "off" or a percentage such as "10%" (`10` and `10%` mean the same, as for `run`). */
function parityAnswer(value: string): string {
  const percent = parseParityPercent(value);
  return percent === undefined ? "off" : `${percent}%`;
}

/**
 * Checks of single answers, shared by the prompts (shown under the field)
 * and by flags (thrown as usage errors naming the flag). Each returns a
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
  /** A label the archive of catalog `db` already gives one of its disks (initDisk would refuse it after the key file is made). */
  labelFree(db: string, value: string): string | undefined {
    if (!existsSync(db)) return undefined;
    let catalog: ArchiveCatalog;
    try {
      catalog = ArchiveCatalog.open(db, { readonly: true });
    } catch {
      // An older or damaged catalog: initDisk says what is wrong with it.
      return undefined;
    }
    try {
      return catalog.disks.byLabel(value) ? `the archive of ${db} already has a disk labelled "${value}"` : undefined;
    } finally {
      catalog.close();
    }
  },
  /** A SIZE (4T, 500G…), or empty for the whole disk. */
  capacity(value: string): string | undefined {
    if (!value.trim()) return undefined;
    const invalid = complaint(() => parseSize(value, "--capacity"));
    if (invalid) return invalid;
    return parseSize(value, "--capacity") === 0 ? "a disk that may hold nothing takes nothing: give a size, or nothing for the whole disk" : undefined;
  },
  /** A SnapRAID configuration whose exclude lines are used too, or empty for none. */
  snapraidConf(path: string): string | undefined {
    if (!path.trim()) return undefined;
    const full = resolve(path);
    if (!existsSync(full)) return `${full} does not exist`;
    if (!statSync(full).isFile()) return `${full} is not a file`;
    try {
      accessSync(full, constants.R_OK);
    } catch {
      return `${full} is not readable`;
    }
    return undefined;
  },
  /** gocryptfs, securefs, or "none" (as the prompt offers it). */
  encrypt(name: string): string | undefined {
    return name === "none" ? undefined : checks.cipher(name);
  },
  cipher(name: string): string | undefined {
    if (!isCipherName(name)) return `"${name}" is not gocryptfs or securefs`;
    if (!hasProgram(name)) return notInstalled(name);
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
    return complaint(() => parseParityPercent(value));
  },
  parityEngine(name: string): string | undefined {
    const invalid = complaint(() => parseParityEngine(name));
    if (invalid) return invalid;
    if (name !== "builtin" && !hasProgram(name)) return notInstalled(name);
    return undefined;
  },
  copier(name: string): string | undefined {
    const invalid = complaint(() => parseCopier(name));
    if (invalid) return invalid;
    if (name === "dc3dd" && !hasProgram("dc3dd")) return notInstalled("dc3dd");
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

/** Answers given as flags, checked and resolved; "none" for --encrypt is kept so the prompt is not asked. */
export type GivenAnswers = Partial<Omit<InitAnswers, "encrypt">> & { readonly encrypt?: InitAnswers["encrypt"] | "none" };

/**
 * Every answer given as a flag (`--source`, `--db`, …), checked as its
 * prompt would check it, before anything is asked or written: the first
 * problem is a usage error naming its flag. Missing answers stay undefined.
 */
export function checkedFlagAnswers(flags: Flags): GivenAnswers {
  const fail = (flag: string, message: string | undefined) => {
    if (message) throw new UsageError(`${flag}: ${message}`);
  };
  // A one-value flag given twice is a usage error, as for every command.
  const one = (name: string) => singleFlag(flags, name);
  const sources = list(flags.source).map((path) => resolve(path));
  for (const source of sources) fail(`--source ${source}`, checks.source(source));
  const snapraidConf = one("snapraid-conf") === undefined ? undefined : resolve(one("snapraid-conf")!);
  if (snapraidConf) fail("--snapraid-conf", checks.snapraidConf(snapraidConf));
  const capacity = one("capacity");
  if (capacity !== undefined) fail("--capacity", checks.capacity(capacity));
  const db = one("db") === undefined ? undefined : resolve(one("db")!);
  if (db) fail("--db", checks.writableFile(db));
  const disk = one("disk") === undefined ? undefined : resolve(one("disk")!);
  if (disk) fail("--disk", checks.disk(disk));
  const label = one("label");
  if (label !== undefined) fail(`--label ${label}`, checks.label(label) ?? (db ? checks.labelFree(db, label) : undefined));
  const encrypt = one("encrypt");
  if (encrypt !== undefined) fail("--encrypt", checks.encrypt(encrypt));
  const keyfile = flags.keyfile === undefined ? undefined : resolve(list(flags.keyfile)[0]);
  if (keyfile) fail("--keyfile", checks.keyfile(keyfile));
  const parity = one("parity");
  if (parity !== undefined) fail("--parity", checks.parity(parity));
  const parityEngine = one("parity-engine");
  // An engine only matters when there is parity to make.
  if (parityEngine !== undefined) fail("--parity-engine", parity !== undefined && parityAnswer(parity) === "off" ? complaint(() => parseParityEngine(parityEngine)) : checks.parityEngine(parityEngine));
  const copier = one("copier");
  if (copier !== undefined) fail("--copier", checks.copier(copier));
  return {
    sources: sources.length > 0 ? sources : undefined,
    exclude: flags.exclude === undefined ? undefined : list(flags.exclude),
    snapraidConf,
    db,
    disk,
    label,
    capacity: capacity === undefined || !capacity.trim() ? undefined : parseSize(capacity, "--capacity"),
    encrypt: encrypt as GivenAnswers["encrypt"],
    keyfile,
    parity: parity === undefined ? undefined : parityAnswer(parity),
    parityEngine: parityEngine as InitAnswers["parityEngine"] | undefined,
    copier: copier as InitAnswers["copier"] | undefined,
  };
}

/** `--yes`: every answer from flags (defaults where optional), each checked; the first problem is a usage error naming its flag. */
function answersForYes(flags: Flags): InitAnswers {
  const given = checkedFlagAnswers(flags);
  const missing = (["sources", "db", "disk", "label"] as const).filter((key) => given[key] === undefined);
  if (missing.length > 0) {
    const names = { sources: "--source DIR", db: "--db FILE", disk: "--disk DIR", label: "--label NAME" };
    throw new UsageError(`blaine init --yes needs ${missing.map((key) => names[key]).join(", ")}`);
  }
  const encrypt = given.encrypt === "none" ? undefined : given.encrypt;
  const answers: InitAnswers = {
    sources: given.sources!,
    exclude: given.exclude ?? [],
    snapraidConf: given.snapraidConf,
    db: given.db!,
    disk: given.disk!,
    label: given.label!,
    capacity: given.capacity,
    encrypt,
    keyfile: given.keyfile,
    // The same default as blaine run's.
    parity: given.parity ?? parityAnswer("10%"),
    parityEngine: given.parityEngine ?? "builtin",
    copier: given.copier ?? "builtin",
  };
  if (answers.encrypt && !answers.keyfile && !process.env[PASSWORD_VARIABLE]) {
    throw new UsageError(`--encrypt: give --keyfile FILE (created when missing) or set ${PASSWORD_VARIABLE}`);
  }
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
 * so an interruption never leaves a configuration pointing at nothing. When
 * a step fails, or Ctrl-C/SIGTERM arrives, what this init created (key file,
 * catalog, disk directory) is removed again.
 */
async function applyInit(answers: InitAnswers, configFile: string, output: Output): Promise<InitResult> {
  const created = new CreatedPaths();
  const interrupted = (code: number) => () => {
    void (async () => {
      await created.remove();
      process.stderr.write("blaine init interrupted: what it had created was removed\n");
      process.exit(code);
    })();
  };
  const onInterrupt = interrupted(130);
  const onTerminate = interrupted(143);
  process.on("SIGINT", onInterrupt);
  process.on("SIGTERM", onTerminate);
  try {
    let keyfileCreated = false;
    if (answers.encrypt) requireCipherTool(answers.encrypt, "--encrypt");
    if (answers.keyfile && !existsSync(answers.keyfile)) {
      created.add(answers.keyfile);
      mkdirSync(dirname(answers.keyfile), { recursive: true, mode: 0o700 });
      writeFileAtomic(answers.keyfile, `${generatePassword()}\n`, 0o600);
      keyfileCreated = true;
      output.say(`Created the key file ${answers.keyfile} (keep a copy somewhere safe: without it the encrypted disks cannot be read).`);
    }
    created.add(answers.db);
    created.add(`${answers.db}-journal`);
    created.add(answers.disk);
    created.add(join(answers.disk, BLAINE_DIR));
    created.add(cipherDirOf(answers.disk));
    mkdirSync(dirname(answers.db), { recursive: true });
    const settings = loadSettings({ db: answers.db, keyfile: answers.keyfile, json: output.json });
    await initDisk(settings, { dir: answers.disk, label: answers.label, capacity: answers.capacity, encrypt: answers.encrypt }, output);
    writeFileAtomic(configFile, renderConfig(answers, configFile));
    output.say(`Wrote ${configFile}. Archive with: blaine run${resolve(dirname(configFile)) === process.cwd() ? "" : ` --config ${configFile}`}`);
    return { exitCode: ExitCode.ok, configFile, keyfileCreated, answers };
  } catch (error) {
    await created.remove();
    throw error;
  } finally {
    process.off("SIGINT", onInterrupt);
    process.off("SIGTERM", onTerminate);
  }
}

/**
 * Paths an init is about to create, each noted by the outermost directory
 * that does not exist yet (or the path itself), so removing them takes away
 * exactly what this init made and nothing that was there before.
 */
class CreatedPaths {
  readonly #paths: string[] = [];

  add(path: string): void {
    if (existsSync(path)) return;
    let outermost = path;
    while (!existsSync(dirname(outermost))) outermost = dirname(outermost);
    if (!this.#paths.includes(outermost)) this.#paths.push(outermost);
  }

  async remove(): Promise<void> {
    // An encrypted disk is mounted from inside its directory: unmounted before that directory goes.
    await releaseDiskMounts().catch(() => undefined);
    for (const path of this.#paths.reverse()) rmSync(path, { recursive: true, force: true });
  }
}

const quote = (value: string) => JSON.stringify(value);
const array = (values: readonly string[]) => `[${values.map(quote).join(", ")}]`;

/** blaine.toml with a comment on every key. */
function renderConfig(answers: InitAnswers, configFile: string): string {
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
  lines.push(
    "",
    "# Parity: PAR2 recovery data on each disk, as a share of its data (\"off\" for none), and the program that makes it.",
    `parity = ${quote(answers.parity)}`,
    `parity-engine = ${quote(answers.parityEngine)}`,
  );
  return `${lines.join("\n")}\n`;
}

/**
 * `blaine init`: on a terminal, the prompts (every answer given as a flag is
 * not asked); with --yes, flags only. Then the key file, the disk and
 * blaine.toml; on a terminal, a dry run is offered at the end.
 */
export async function runInit(flags: Flags, output: Output): Promise<InitResult> {
  // The blaine.toml to write: --config FILE, else ./blaine.toml.
  const configFile = resolve(String(flags.config ?? CONFIG_FILE));
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
