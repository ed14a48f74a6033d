/**
 * `blaine par2 create|verify|repair`: the built-in PAR2 engine as a
 * standalone tool, taking every option of par2cmdline 0.8.1 with its meaning,
 * so switching is a matter of the command name:
 *   create [-r PERCENT] [-b BLOCKCOUNT | -s BLOCKSIZE] [-c RECOVERYBLOCKS] [-f FIRSTBLOCK]
 *          [-u | -l] [-n RECOVERYFILES] [-a SET.par2] [-R] [common] SET.par2 FILE…
 *   verify|repair [-p] [-N [-S LEAWAY]] [common] SET.par2 [FILE…]
 *   common: [-B BASEPATH] [-q | -qq | -v | -vv] [-t THREADS] [-T FILETHREADS] [-m MEMORY] [--]
 * Options take their value attached (-r10) or as the next argument (-r 10).
 * FILEs after verify/repair are where set files are now (matched by name).
 * -m MB bounds the memory of the recovery computation (as par2cmdline's does:
 * more passes over the data when less is given). -T, -N and -S tune
 * par2cmdline's own machinery (files hashed at once, searching for
 * displaced blocks) and change nothing here.
 */
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { BlaineError, ExitCode, errorMessage, UsageError, type ExitCode as ExitCodeValue } from "../errors.ts";
import { createRecoverySet } from "../par2/create.ts";
import { repairChecked } from "../par2/repair.ts";
import { loadRecoverySet, RecoverySetError, setFiles } from "../par2/recovery-set.ts";
import type { RecoveryFileScheme } from "../par2/sizing.ts";
import { checkFiles, type SetCheck } from "../par2/verify.ts";
import { formatBytes } from "../size.ts";
import type { Output } from "./output.ts";

const USAGE =
  "usage: blaine par2 create [-r PERCENT] [-b BLOCKCOUNT | -s BLOCKSIZE] [-c RECOVERYBLOCKS] [-f FIRSTBLOCK] [-u | -l] [-n RECOVERYFILES] [-a SET.par2] [-R] [COMMON] SET.par2 FILE…\n" +
  "       blaine par2 verify [-p] [-N [-S LEAWAY]] [COMMON] SET.par2 [FILE…]\n" +
  "       blaine par2 repair [-p] [-N [-S LEAWAY]] [COMMON] SET.par2 [FILE…]\n" +
  "       COMMON: [-B BASEPATH] [-q | -qq | -v | -vv] [-t THREADS] [-T FILETHREADS] [-m MEMORY] [--]";

const VALUE_OPTIONS = new Set(["r", "b", "s", "c", "n", "f", "t", "T", "m", "S", "B", "a"]);
const FLAG_OPTIONS = new Set(["q", "v", "u", "l", "p", "N", "R"]);
/** par2cmdline refuses these outside `create`, and `-p`, `-N`, `-S` outside verify and repair. */
const CREATE_ONLY = ["r", "b", "s", "c", "n", "f", "u", "l", "a", "R"];
const CHECK_ONLY = ["p", "N", "S"];

/** par2cmdline's noise levels: -qq silent, -q quiet, normal, -v noisy, -vv debug. */
const Noise = { silent: 0, quiet: 1, normal: 2, noisy: 3 } as const;
type Noise = (typeof Noise)[keyof typeof Noise];

interface ParsedArguments {
  readonly options: Map<string, string>;
  /** How often each flag was given (-q -q and -qq both count 2). */
  readonly flags: Map<string, number>;
  readonly positional: string[];
  readonly json: boolean;
}

/** The options every blaine command accepts, with a value (`--db FILE` or `--db=FILE`). */
const COMMON_VALUE_FLAGS = new Set(["--config", "--db", "--dest", "--keyfile", "--disks"]);

function parseArguments(args: readonly string[]): ParsedArguments {
  const options = new Map<string, string>();
  const flags = new Map<string, number>();
  const positional: string[] = [];
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (arg === "--json") json = true;
    else if (COMMON_VALUE_FLAGS.has(arg.split("=")[0])) {
      // Every command takes these (README); par2 works on the files it is
      // given and needs no catalog or disk, so their values are not used.
      if (!arg.includes("=") && args[++i] === undefined) throw new UsageError(`par2: option ${arg} needs a value\n${USAGE}`);
    }
    else if (/^-[a-zA-Z]/.test(arg)) {
      const letter = arg[1];
      if (FLAG_OPTIONS.has(letter)) {
        // -qq and -vv are par2cmdline's doubled forms; other flags stand alone.
        const doubled = (letter === "q" || letter === "v") && arg === `-${letter}${letter}`;
        if (arg.length !== 2 && !doubled) throw new UsageError(`par2: unknown option ${arg}\n${USAGE}`);
        flags.set(letter, (flags.get(letter) ?? 0) + (doubled ? 2 : 1));
        continue;
      }
      if (!VALUE_OPTIONS.has(letter)) throw new UsageError(`par2: unknown option ${arg}\n${USAGE}`);
      const value = arg.length > 2 ? arg.slice(2) : args[++i];
      if (value === undefined) throw new UsageError(`par2: option -${letter} needs a value\n${USAGE}`);
      options.set(letter, value);
    } else if (arg.startsWith("--")) throw new UsageError(`par2: unknown option ${arg}\n${USAGE}`);
    else positional.push(arg);
  }
  return { options, flags, positional, json };
}

function integerOption(options: Map<string, string>, letter: string, what: string, minimum = 0): number | undefined {
  const text = options.get(letter);
  if (text === undefined) return undefined;
  const cleaned = letter === "r" ? text.replace(/%$/, "") : text;
  if (letter === "r" && /^[kmg]\d+$/i.test(cleaned)) {
    throw new UsageError(`par2: -r${text}: a redundancy target size is not supported by Blaine's engine; give -r PERCENT or -c RECOVERYBLOCKS`);
  }
  const value = Number(cleaned);
  if (!/^\d+$/.test(cleaned) || value < minimum) throw new UsageError(`par2: -${letter} ${text}: ${what} must be an integer ≥ ${minimum}`);
  return value;
}

/** -m MB: the memory the recovery computation may hold (par2cmdline's meaning); undefined: the engine's default. */
function memoryOption(parsed: ParsedArguments): number | undefined {
  const megabytes = integerOption(parsed.options, "m", "the memory in MB", 1);
  return megabytes === undefined ? undefined : megabytes * 1024 * 1024;
}

function has(parsed: ParsedArguments, letter: string): boolean {
  return parsed.options.has(letter) || parsed.flags.has(letter);
}

/** The checks par2cmdline makes on the combination of options, with its refusals. */
function checkCombination(action: string, parsed: ParsedArguments): void {
  const misplaced = (action === "create" ? CHECK_ONLY : CREATE_ONLY).find((letter) => has(parsed, letter));
  if (misplaced) {
    throw new UsageError(`par2 ${action}: -${misplaced} applies only to ${action === "create" ? "verify and repair" : "create"} (as in par2cmdline)\n${USAGE}`);
  }
  if (parsed.flags.has("q") && parsed.flags.has("v")) throw new UsageError("par2: give either -q or -v, not both");
  if (parsed.options.has("S") && !parsed.flags.has("N")) throw new UsageError("par2: -S (skip leaway) needs -N (data skipping)");
  if (parsed.flags.has("u") && parsed.flags.has("l")) throw new UsageError("par2 create: give either -u (uniform) or -l (limited) recovery file sizes, not both");
  if (parsed.flags.has("l") && parsed.options.has("n")) throw new UsageError("par2 create: give either -l (limited file sizes) or -n RECOVERYFILES, not both");
  if (parsed.options.has("b") && parsed.options.has("s")) throw new UsageError("par2 create: give either -b BLOCKCOUNT or -s BLOCKSIZE, not both");
  if (parsed.options.has("r") && parsed.options.has("c")) throw new UsageError("par2 create: give either -r PERCENT or -c RECOVERYBLOCKS, not both");
  // Accepted for par2cmdline's sake and checked, but Blaine's engine has no use for them.
  integerOption(parsed.options, "T", "the number of files hashed at once", 1);
  integerOption(parsed.options, "S", "the skip leaway", 1);
}

function noiseOf(parsed: ParsedArguments): Noise {
  const quiet = parsed.flags.get("q") ?? 0;
  if (quiet >= 2) return Noise.silent;
  if (quiet === 1) return Noise.quiet;
  return parsed.flags.has("v") ? Noise.noisy : Noise.normal;
}

/** Lines at a noise level: shown when the chosen level is at least that (quiet lines even with -q; none with -qq). */
type Say = (line: string, level?: Noise) => void;

/** Runs `blaine par2 ACTION ARGS…` and returns the exit code. */
export async function par2Command(action: string | undefined, args: readonly string[], output: (json: boolean) => Output): Promise<ExitCodeValue> {
  const parsed = parseArguments(args);
  const out = output(parsed.json);
  if (action !== "create" && action !== "verify" && action !== "repair") {
    throw new UsageError(action ? `par2: unknown action "${action}" (known: create, verify, repair)\n${USAGE}` : USAGE);
  }
  checkCombination(action, parsed);
  const noise = noiseOf(parsed);
  const say: Say = (line, level = Noise.normal) => {
    if (noise >= level) out.say(line);
  };
  try {
    if (action === "create") return await create(parsed, out, say);
    return await verifyOrRepair(action, parsed, out, say);
  } catch (error) {
    if (error instanceof BlaineError) throw error;
    if (error instanceof RangeError || error instanceof RecoverySetError) throw new BlaineError(`par2 ${action}: ${error.message}`, ExitCode.usage);
    throw new BlaineError(`par2 ${action}: ${errorMessage(error)}`);
  }
}

/** Every regular file under `directory`, in name order (-R). */
function filesUnder(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((entry) => {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) return filesUnder(path);
      return entry.isFile() ? [path] : [];
    });
}

/** par2cmdline's set name: `.par2` is added when missing (`-a NAME` and the first argument alike). */
function withPar2Suffix(name: string): string {
  return /\.par2$/i.test(name) ? name : `${name}.par2`;
}

async function create(parsed: ParsedArguments, out: Output, say: Say): Promise<ExitCodeValue> {
  const { options, flags } = parsed;
  const positional = [...parsed.positional];
  let setPath = options.get("a") ?? positional.shift();
  if (!setPath) throw new UsageError(`par2 create: give SET.par2 and at least one FILE\n${USAGE}`);
  let files = positional;
  // As par2cmdline does: `create data.bin` alone protects data.bin in data.bin.par2.
  if (files.length === 0 && !options.has("a") && !/\.par2$/i.test(setPath) && existsSync(setPath) && statSync(setPath).isFile()) files = [setPath];
  if (files.length === 0) throw new UsageError(`par2 create: give SET.par2 and at least one FILE\n${USAGE}`);
  setPath = withPar2Suffix(setPath);
  const base = resolve(options.get("B") ?? dirname(setPath));
  const recurse = flags.has("R");
  const setFiles: { path: string; name: string }[] = [];
  for (const file of files) {
    let stats;
    try {
      stats = statSync(file);
    } catch {
      throw new UsageError(`par2 create: ${file}: no such file`);
    }
    const paths = stats.isDirectory() && recurse ? filesUnder(file) : [file];
    if (!stats.isFile() && !(stats.isDirectory() && recurse)) throw new UsageError(`par2 create: ${file}: not a regular file${stats.isDirectory() ? " (-R takes in directories)" : ""}`);
    for (const path of paths) {
      const name = relative(base, resolve(path));
      // par2cmdline leaves out files outside the base path with this message, and goes on with the rest.
      if (name.startsWith(`..${sep}`) || name === ".." || name === "") {
        say(`Ignoring out of basepath source file: ${resolve(path)}`, Noise.quiet);
        continue;
      }
      setFiles.push({ path, name: name.split(sep).join("/") });
    }
  }
  if (setFiles.length === 0) throw new UsageError(`par2 create: no file to protect under the base path ${base} (PAR2 names files relative to it: the directory of ${basename(setPath)}, or -B)`);
  const scheme: RecoveryFileScheme = flags.has("u") ? "uniform" : flags.has("l") ? "limited" : "variable";
  const built = await createRecoverySet(setPath, {
    files: setFiles,
    redundancy: integerOption(options, "r", "the redundancy"),
    blockCount: integerOption(options, "b", "the block count", 1),
    sliceSize: integerOption(options, "s", "the block size", 4),
    recoveryCount: integerOption(options, "c", "the recovery block count"),
    recoveryFileCount: integerOption(options, "n", "the recovery file count", 1),
    recoveryFileScheme: scheme,
    firstExponent: integerOption(options, "f", "the first recovery block"),
    threads: integerOption(options, "t", "the thread count", 1),
    memory: memoryOption(parsed),
  });
  const written = built.paths;
  for (const name of built.skippedEmpty) say(`Skipping ${name}: empty files need no recovery data.`);
  say(`${built.inputSlices} source blocks of ${formatBytes(built.sliceSize)}, ${built.recoveryCount} recovery blocks; wrote ${written.length} files:`);
  for (const path of written) say(`  ${path}`);
  say(`Base path ${base}; files named in the set: ${setFiles.map((f) => f.name).join(", ")}`, Noise.noisy);
  say("Done", Noise.quiet);
  out.result({ setPath, sliceSize: built.sliceSize, sourceBlocks: built.inputSlices, recoveryBlocks: built.recoveryCount, files: written, skippedEmpty: built.skippedEmpty });
  return ExitCode.ok;
}

async function verifyOrRepair(action: "verify" | "repair", parsed: ParsedArguments, out: Output, say: Say): Promise<ExitCodeValue> {
  let [setPath, ...extra] = parsed.positional;
  if (!setPath) throw new UsageError(`par2 ${action}: give SET.par2\n${USAGE}`);
  // As par2cmdline does: a data file's name finds its set NAME.par2.
  if (!/\.par2$/i.test(setPath) && existsSync(`${setPath}.par2`)) setPath = `${setPath}.par2`;
  const set = loadRecoverySet(setPath);
  const byName = new Map(extra.map((file) => [basename(file), file]));
  // -B: where the set's file names start; by default the set's own directory.
  const base = parsed.options.get("B") ?? dirname(setPath);
  // One file for a one-file set may have any name (a renamed file, an archived copy).
  const only = set.entries.length === 1 && extra.length === 1 ? extra[0] : undefined;
  const locate = (name: string) => byName.get(basename(name)) ?? only ?? join(base, name);
  const check = await checkFiles(set, { locate });
  report(check, say);
  const purge = parsed.flags.has("p");
  if (action === "verify") {
    out.result(summary(check));
    const damaged = check.badSlices > 0 || check.files.some((f) => f.status !== "intact");
    if (!damaged && purge) purgeSet(setPath, say);
    return damaged ? ExitCode.damage : ExitCode.ok;
  }
  const result = await repairChecked(check, { threads: integerOption(parsed.options, "t", "the thread count", 1), memory: memoryOption(parsed) });
  if (result.failure) {
    say(`Repair is not possible: ${result.failure}`, Noise.quiet);
    out.result({ ...summary(check), repaired: result.repaired, failure: result.failure });
    return ExitCode.damage;
  }
  for (const path of result.repaired) say(`Repaired ${path}`, Noise.quiet);
  if (result.repaired.length === 0) say("All files are intact; no repair needed.");
  out.result({ ...summary(check), repaired: result.repaired });
  if (purge) purgeSet(setPath, say);
  return ExitCode.ok;
}

/**
 * -p: par2cmdline deletes the set's files (and its backups of damaged
 * files) once the data is whole. Blaine replaces damaged files atomically
 * and keeps no backups, so only the set's files go.
 */
function purgeSet(setPath: string, say: Say): void {
  for (const path of setFiles(setPath)) {
    rmSync(path, { force: true });
    say(`Purged ${path}`, Noise.noisy);
  }
}

function report(check: SetCheck, say: Say): void {
  for (const file of check.files) {
    const detail = file.status === "damaged" ? ` (${file.badSlices.length} of ${file.slices} blocks damaged)` : "";
    say(`${file.status.toUpperCase().padEnd(7)} ${file.path}${detail}`);
    if (file.status === "damaged") say(`  damaged blocks: ${file.badSlices.join(", ")}`, Noise.noisy);
  }
  if (check.set.recoveryDamaged > 0) say(`${check.set.recoveryDamaged} recovery blocks are damaged or missing.`);
  const damaged = check.files.some((f) => f.status !== "intact");
  if (!damaged) say("All files are intact.", Noise.quiet);
  else if (check.repairable) say(`Repair is possible: ${check.badSlices} blocks to rebuild, ${check.recoveryAvailable} recovery blocks available.`, Noise.quiet);
  else say(`Repair is not possible: ${check.badSlices} blocks damaged, only ${check.recoveryAvailable} recovery blocks available.`, Noise.quiet);
}

function summary(check: SetCheck) {
  return {
    setPath: check.set.setPath,
    files: check.files.map(({ name, path, status, badSlices, slices }) => ({ name, path, status, damagedBlocks: badSlices.length, blocks: slices })),
    damagedBlocks: check.badSlices,
    recoveryBlocks: check.recoveryAvailable,
    recoveryBlocksDamaged: check.set.recoveryDamaged,
    repairable: check.repairable,
  };
}
