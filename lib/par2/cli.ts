/**
 * `blaine par2 create|verify|repair`: the built-in PAR2 engine as a
 * standalone tool, taking every option of par2cmdline 0.8.1 with its meaning,
 * so switching is a matter of the command name:
 *   create [-r PERCENT] [-b BLOCKCOUNT | -s BLOCKSIZE] [-c RECOVERYBLOCKS] [-f FIRSTBLOCK]
 *          [-u | -l] [-n RECOVERYFILES] [-a SET.par2] [-R] [common] SET.par2 FILE…
 *   verify|repair [-p] [-O] [-N [-S LEAWAY]] [common] SET.par2 [FILE…]
 *   common: [-B BASEPATH] [-q | -qq | -v | -vv] [-t THREADS] [-T FILETHREADS] [-m MEMORY] [--]
 * Options take their value attached (-r10) or as the next argument (-r 10).
 * FILEs after verify/repair are where set files are now (matched by name).
 * -m MB bounds the memory of the recovery computation (as par2cmdline's does:
 * more passes over the data when less is given). FILEs after verify/repair
 * that are not the set's files by name are searched by content; -N/-S
 * narrow that search as par2cmdline's do. -T tunes par2cmdline's own
 * hashing and changes nothing here. A PAR 1.0 set (SET.par, SET.pNN)
 * given to verify or repair is handled by par2-par1.ts.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { BlaineError, errorMessage, UsageError } from "../errors.ts";
import { removeDeadTemps } from "../fs/dead-temps.ts";
import { releaseScratch } from "./scratch.ts";
import { isPar1Name } from "./par1-format.ts";
import { deadTempsLine, pendingTempPrefix, setBase } from "./write-set.ts";
import { loadRecoverySet, RecoverySetError, setFiles } from "./recovery-set.ts";
import type { RecoveryFileScheme } from "./sizing.ts";
import { checkFiles, isWholeCopy, type SetCheck } from "./verify.ts";
import { formatBytes } from "../size.ts";
import { TerminalLine } from "../cli/progress-line.ts";
import { version as packageVersion } from "../../package.json";
import type { Output } from "../cli/output.ts";

const USAGE =
  "usage: blaine par2 c(reate) [-r PERCENT | -rkN | -rmN | -rgN] [-b BLOCKCOUNT | -s BLOCKSIZE] [-c RECOVERYBLOCKS] [-f FIRSTBLOCK] [-u | -l] [-n RECOVERYFILES] [-a SET.par2] [-R] [-L] [COMMON] SET.par2 FILE…\n" +
  "       blaine par2 v(erify) [-p] [-O] [-N [-S LEAWAY]] [-a SET.par2] [COMMON] SET.par2|SET.par [FILE…]\n" +
  "       blaine par2 r(epair) [-p] [-O] [-N [-S LEAWAY]] [-a SET.par2] [COMMON] SET.par2|SET.par [FILE…]\n" +
  "       COMMON: [-B BASEPATH] [-q | -qq | -v | -vv] [-t THREADS] [-T FILETHREADS] [-m MEMORY] [--]; @FILE: arguments from FILE"

/**
 * par2cmdline's exit codes, which scripts written for it test: `blaine par2`
 * answers with these, not with Blaine's own (README "Exit codes").
 */
export const Par2Exit = {
  ok: 0,
  /** verify: damage found, and enough recovery blocks to repair it. */
  repairPossible: 1,
  /** Damage beyond the recovery blocks. */
  repairNotPossible: 2,
  invalidArguments: 3,
  /** The set's own critical packets are missing or damaged. */
  insufficientCriticalData: 4,
  /** Repair ran, but a rebuilt block did not match its checksum. */
  repairFailed: 5,
  fileIoError: 6,
  logicError: 7,
} as const;
type Par2Exit = (typeof Par2Exit)[keyof typeof Par2Exit];

const VALUE_OPTIONS = new Set(["r", "b", "s", "c", "n", "f", "t", "T", "m", "S", "B", "a"]);
const FLAG_OPTIONS = new Set(["q", "v", "u", "l", "p", "N", "R", "L", "O"]);
/** par2cmdline refuses these outside `create`, and `-p`, `-N`, `-S`, `-O` outside verify and repair. */
const CREATE_ONLY = ["r", "b", "s", "c", "n", "f", "u", "l", "R", "L"];
const CHECK_ONLY = ["p", "N", "S", "O"];

/** par2cmdline's noise levels: -qq silent, -q quiet, normal, -v noisy, -vv debug. */
export const Noise = { silent: 0, quiet: 1, normal: 2, noisy: 3 } as const;
export type Noise = (typeof Noise)[keyof typeof Noise];

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
    // As par2cmdline reads them: short options end at the first name (SET.par2), and what follows is a file even if it starts with -.
    else if (/^-[a-zA-Z]/.test(arg) && positional.length === 0) {
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
    } else if (arg.startsWith("--") && positional.length === 0) throw new UsageError(`par2: unknown option ${arg}\n${USAGE}`);
    else positional.push(arg);
  }
  return { options, flags, positional, json };
}

function integerOption(options: Map<string, string>, letter: string, what: string, minimum = 0): number | undefined {
  const text = options.get(letter);
  if (text === undefined) return undefined;
  const cleaned = letter === "r" ? text.replace(/%$/, "") : text;
  const value = Number(cleaned);
  if (!/^\d+$/.test(cleaned) || value < minimum) throw new UsageError(`par2: -${letter} ${text}: ${what} must be an integer ≥ ${minimum}`);
  return value;
}

/** -rk N, -rm N, -rg N: par2cmdline's target size of the recovery data, in bytes (KiB, MiB, GiB). */
function redundancyTarget(options: Map<string, string>): number | undefined {
  const text = options.get("r");
  const match = text === undefined ? null : /^([kmg])(\d+)$/.exec(text);
  if (!match) return undefined;
  return Number(match[2]) * 1024 ** ("kmg".indexOf(match[1]) + 1);
}

/** -r PERCENT: 0 to 100, par2cmdline's range (it refuses more, exit 3). */
function redundancyPercent(options: Map<string, string>): number | undefined {
  const percent = integerOption(options, "r", "the redundancy");
  if (percent !== undefined && percent > 100) throw new UsageError(`par2: -r ${options.get("r")}: the redundancy must be at most 100 (percent, as in par2cmdline)`);
  return percent;
}

/** -m MB: the memory the recovery computation may hold (par2cmdline's meaning); undefined: the engine's default. */
function memoryOption(parsed: ParsedArguments): number | undefined {
  const megabytes = integerOption(parsed.options, "m", "the memory in MB", 1);
  return megabytes === undefined ? undefined : megabytes * 1024 * 1024;
}

/**
 * What a repair's products may hold without -m: a quarter of the engine's
 * default. Its outputs are the missing slices (a hundred of a 500 MiB
 * file's 2000 with 5 % damage), one range of each in the memory the threads
 * share (shared-multiply.ts) beside two batches of inputs and their tables;
 * measured on that file: 2 MB less peak memory than with 4 MB (61 vs 63 MB,
 * par2cmdline's 31) for the same CPU time.
 */
const REPAIR_MEMORY = 2 * 1024 * 1024;

/**
 * What create's products may hold without -m: four times the engine's
 * default. Each range costs a coefficient table per input and recovery slice
 * and a read per input, so fewer, longer ranges spend less on them; measured
 * on 500 MiB with -r10 -b2000 (2 cores): 5.2–5.4 s instead of 5.9 s, peak
 * memory 94 MB instead of 84 MB (par2cmdline's: 57 MB). Longer still gained
 * little for its memory (64 MiB: 5.15 s, 107 MB). An archive run's parity
 * stage keeps the engine's default: it holds other work beside it.
 */
const CREATE_MEMORY = 32 * 1024 * 1024;

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
  // Accepted for par2cmdline's sake and checked, but Blaine's engine has no use for it.
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
export type Say = (line: string, level?: Noise) => void;

/** par2cmdline's spellings of the actions: `c`, `v`, `r` or the words, in any case. */
export function par2Action(word: string | undefined): "create" | "verify" | "repair" | undefined {
  const lower = word?.toLowerCase();
  if (lower === "c" || lower === "create") return "create";
  if (lower === "v" || lower === "verify") return "verify";
  if (lower === "r" || lower === "repair") return "repair";
  return undefined;
}

/** Runs `blaine par2 ACTION ARGS…` and returns par2cmdline's exit code for the outcome. */
export async function par2Command(action: string | undefined, args: readonly string[], output: (json: boolean) => Output): Promise<number> {
  // par2cmdline's -V, -VV and -h come in the action's place; scripts probe for par2 with `par2 -V`.
  if (action === "-V" || action === "--version" || action === "-VV") {
    console.log(`blaine par2 version ${packageVersion} (par2cmdline 0.8.1's options and exit codes; PAR 2.0 and PAR 1.0 sets)`);
    return Par2Exit.ok;
  }
  if (action === "-h" || action === "--help") {
    console.log(USAGE);
    return Par2Exit.ok;
  }
  let out: Output | undefined;
  try {
    const parsed = parseArguments(await expandListFiles(args));
    out = output(parsed.json);
    const chosen = par2Action(action);
    if (!chosen) throw new UsageError(action ? `par2: unknown action "${action}" (known: c(reate), v(erify), r(epair))\n${USAGE}` : USAGE);
    checkCombination(chosen, parsed);
    const noise = noiseOf(parsed);
    const say: Say = (line, level = Noise.normal) => {
      if (noise >= level) out!.say(line);
    };
    if (chosen === "create") return await create(parsed, out, say);
    return await verifyOrRepair(chosen, parsed, out, say);
  } catch (error) {
    const where = par2Action(action) ?? action ?? "";
    const message = error instanceof UsageError ? error.message : `par2 ${where}: ${errorMessage(error)}`;
    console.error(`blaine: ${message.replace(/^par2 (create|verify|repair): par2 \1: /, "par2 $1: ")}`);
    if (error instanceof UsageError || error instanceof RangeError) return Par2Exit.invalidArguments;
    if (error instanceof RecoverySetError) return Par2Exit.insufficientCriticalData;
    if (error instanceof BlaineError) return Par2Exit.invalidArguments;
    if (typeof (error as NodeJS.ErrnoException)?.code === "string") return Par2Exit.fileIoError;
    return Par2Exit.logicError;
  }
}

/**
 * `@FILE` arguments: FILE lists one argument per line (blank lines skipped),
 * for file lists too long for a command line. `@` alone, and arguments
 * after `--`, stay as they are.
 */
async function expandListFiles(args: readonly string[]): Promise<string[]> {
  const expanded: string[] = [];
  for (const [i, arg] of args.entries()) {
    if (arg === "--") {
      expanded.push(...args.slice(i));
      break;
    }
    if (!arg.startsWith("@") || arg.length === 1) {
      expanded.push(arg);
      continue;
    }
    let text: string;
    try {
      text = readFileSync(arg.slice(1), "utf8");
    } catch (error) {
      throw new UsageError(`par2: cannot read the list file ${arg.slice(1)} (${errorMessage(error)})`);
    }
    expanded.push(...text.split(/\r?\n/).filter((line) => line.trim() !== ""));
  }
  return expanded;
}

/**
 * FILE arguments with `*` or `?` in their last part, expanded as
 * par2cmdline expands them itself (for shells that do not, and quoted
 * patterns in scripts): the names in that directory that match, in name
 * order; directories too with -R. One that names a file as it is stays.
 */
function expandWildcards(files: readonly string[], withDirectories: boolean): string[] {
  return files.flatMap((file) => {
    const name = basename(file);
    if (!/[*?]/.test(name) || existsSync(file)) return [file];
    const directory = dirname(file);
    const pattern = new RegExp(`^${name.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "s");
    let names: string[];
    try {
      names = readdirSync(directory).filter((candidate) => pattern.test(candidate)).sort();
    } catch {
      return [];
    }
    return names
      .map((candidate) => (directory === "." && !file.startsWith("./") ? candidate : join(directory, candidate)))
      .filter((path) => {
        const stats = statSync(path, { throwIfNoEntry: false });
        return stats !== undefined && (stats.isFile() || (withDirectories && stats.isDirectory()));
      });
  });
}

/**
 * Every regular file under `directory`, in name order (-R). Symbolic links
 * are left out with a message, as par2cmdline (1.0 and later) does, unless
 * `followLinks` (-L): then links to files are taken in, never links to
 * directories (a loop, or a tree outside the one given).
 */
function filesUnder(directory: string, followLinks: boolean, say: Say): string[] {
  return readdirSync(directory, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((entry) => {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) return filesUnder(path, followLinks, say);
      if (entry.isSymbolicLink()) return linkedFile(path, followLinks, say);
      return entry.isFile() ? [path] : [];
    });
}

/** A symbolic link among the files to protect: its target file with -L, else left out (par2cmdline's current rule). */
function linkedFile(path: string, followLinks: boolean, say: Say): string[] {
  if (!followLinks) {
    say(`Skipping symbolic link: ${path} (-L follows links to files)`, Noise.quiet);
    return [];
  }
  try {
    if (statSync(path).isFile()) return [path];
  } catch {
    // A dangling link protects nothing.
  }
  say(`Skipping symbolic link: ${path} (not a link to a file)`, Noise.quiet);
  return [];
}

/** par2cmdline's set name: `.par2` is added when missing (`-a NAME` and the first argument alike). */
function withPar2Suffix(name: string): string {
  return /\.par2$/i.test(name) ? name : `${name}.par2`;
}

async function create(parsed: ParsedArguments, out: Output, say: Say): Promise<Par2Exit> {
  const { options, flags } = parsed;
  const positional = [...parsed.positional];
  let setPath = options.get("a") ?? positional.shift();
  if (!setPath) throw new UsageError(`par2 create: give SET.par2 and at least one FILE\n${USAGE}`);
  let files = expandWildcards(positional, parsed.flags.has("R"));
  // As par2cmdline does: `create data.bin` alone protects data.bin in data.bin.par2.
  if (files.length === 0 && !options.has("a") && !/\.par2$/i.test(setPath) && existsSync(setPath) && statSync(setPath).isFile()) files = [setPath];
  if (files.length === 0) throw new UsageError(`par2 create: give SET.par2 and at least one FILE\n${USAGE}`);
  setPath = withPar2Suffix(setPath);
  const base = resolve(options.get("B") ?? dirname(setPath));
  const recurse = flags.has("R");
  const followLinks = flags.has("L");
  // The one file a set is made for (`create data.bin`) is followed when it is a link, as par2cmdline does.
  const primary = files.length === 1 && withPar2Suffix(files[0]) === setPath ? files[0] : undefined;
  const setFiles: { path: string; name: string }[] = [];
  for (const file of files) {
    let stats;
    try {
      stats = statSync(file);
    } catch {
      throw new UsageError(`par2 create: ${file}: no such file`);
    }
    if (file !== primary && lstatSync(file).isSymbolicLink() && linkedFile(file, followLinks, say).length === 0) continue;
    const paths = stats.isDirectory() && recurse ? filesUnder(file, followLinks, say) : [file];
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
  // A create killed with SIGKILL left its temps beside the set: nothing else removes them.
  sayDeadTemps(removeDeadTemps(dirname(resolve(setPath)), pendingTempPrefix(setBase(setPath))).removed, say);
  // Loaded by the action that needs it: each is code a verify or the other action would hold through its run.
  const { createRecoverySet } = await import("./create.ts");
  const processing = progressLine(parsed, "Processing", () => setFiles.reduce((sum, file) => sum + statSync(file.path).size, 0));
  const built = await createRecoverySet(setPath, {
    files: setFiles,
    recoveryBytes: redundancyTarget(options),
    redundancy: redundancyTarget(options) === undefined ? redundancyPercent(options) : undefined,
    blockCount: integerOption(options, "b", "the block count", 1),
    sliceSize: integerOption(options, "s", "the block size", 4),
    recoveryCount: integerOption(options, "c", "the recovery block count"),
    recoveryFileCount: integerOption(options, "n", "the recovery file count", 1),
    recoveryFileScheme: scheme,
    firstExponent: integerOption(options, "f", "the first recovery block"),
    threads: integerOption(options, "t", "the thread count", 1),
    memory: memoryOption(parsed) ?? CREATE_MEMORY,
    onProgress: processing.onProgress,
  }).finally(() => processing.stop());
  const written = built.paths;
  // par2cmdline's lines (scripts read the block size from them), then the files written.
  for (const name of built.skippedEmpty) say(`Skipping 0 byte file: ${name}`);
  say(`Block size: ${built.sliceSize}`);
  say(`Source file count: ${setFiles.length - built.skippedEmpty.length}`);
  say(`Source block count: ${built.inputSlices}`);
  say(`Recovery block count: ${built.recoveryCount}`);
  say(`Recovery file count: ${written.length - 1}`);
  say(`Wrote ${written.length} files (${formatBytes(built.sliceSize)} blocks): ${written.join(", ")}`, Noise.noisy);
  say(`Base path ${base}; files named in the set: ${setFiles.map((f) => f.name).join(", ")}`, Noise.noisy);
  say("Done", Noise.quiet);
  out.result({ setPath, sliceSize: built.sliceSize, sourceBlocks: built.inputSlices, recoveryBlocks: built.recoveryCount, files: written, skippedEmpty: built.skippedEmpty });
  return Par2Exit.ok;
}

async function verifyOrRepair(action: "verify" | "repair", parsed: ParsedArguments, out: Output, say: Say): Promise<Par2Exit> {
  // -a SET (par2cmdline: "optional for verify and repair"): every argument is then a file.
  const named = parsed.options.get("a");
  let [setPath, ...extra] = named === undefined ? parsed.positional : [named, ...parsed.positional];
  extra = expandWildcards(extra, false);
  if (!setPath) throw new UsageError(`par2 ${action}: give SET.par2\n${USAGE}`);
  // As par2cmdline does: a data file's name finds its set NAME.par2 (else NAME.par, a PAR 1.0 set).
  if (!/\.par2$/i.test(setPath) && !isPar1Name(setPath)) {
    setPath = [".par2", ".PAR2", ".par", ".PAR"].map((suffix) => setPath + suffix).find((path) => existsSync(path)) ?? setPath;
  }
  // par2cmdline takes a set that is not there for a bad command line (exit 3).
  if (!existsSync(setPath)) throw new UsageError(`par2 ${action}: ${setPath}: no such recovery set`);
  // par2cmdline passes over FILEs that are not there (a download still arriving); named with -v.
  for (const file of extra.filter((file) => !existsSync(file))) say(`Ignoring non-existent source file: ${resolve(file)}`, Noise.noisy);
  extra = extra.filter((file) => existsSync(file));
  if (isPar1Name(setPath)) {
    const { verifyOrRepairPar1 } = await import("./par1-cli.ts");
    return verifyOrRepairPar1({ action, setPath, extra, base: parsed.options.get("B"), purge: parsed.flags.has("p"), memory: memoryOption(parsed) }, out, say) as Par2Exit;
  }
  const set = loadRecoverySet(setPath);
  const byName = new Map(extra.map((file) => [basename(file), file]));
  // -B: where the set's file names start; by default the set's own directory.
  const base = parsed.options.get("B") ?? dirname(setPath);
  // One file for a one-file set may have any name (a renamed file, an archived copy).
  const only = set.entries.length === 1 && extra.length === 1 ? extra[0] : undefined;
  const located = new Set<string>();
  const locate = (name: string) => {
    const given = byName.get(basename(name)) ?? only;
    if (given !== undefined) located.add(given);
    return given ?? join(base, name);
  };
  for (const entry of set.entries) locate(entry.description.name);
  // The other FILEs are searched by content for the set's missing blocks (renamed files, pieces, shifted data).
  // -O (rename-only, par2cmdline 1.0): only whole copies are taken, nothing is searched block by block.
  const renameOnly = parsed.flags.has("O");
  const extraFiles = extra.filter((file) => !located.has(file));
  const searched = renameOnly ? extraFiles.filter((file) => isWholeCopy(file, set)) : extraFiles;
  const leeway = integerOption(parsed.options, "S", "the skip leaway", 1) ?? 64;
  // The set's files are read whole at their places first: as long as creating the set took to read them.
  const scanning = progressLine(parsed, "Scanning", () => set.entries.reduce((sum, entry) => sum + entry.description.length, 0));
  const check = await checkFiles(set, {
    locate, extraFiles: searched, searchDamaged: !renameOnly, skip: parsed.flags.has("N") ? { leeway } : undefined, onProgress: scanning.onProgress,
  }).finally(() => scanning.stop());
  reportSet(check, say);
  reportTargets(check, say);
  // par2cmdline looks at the other files only when a file is not whole, and names them only then.
  const whole = check.files.every((file) => file.status === "intact");
  const renamed = whole ? new Set<string>() : reportFound(check, extraFiles, say);
  reportSummary(check, renamed, say);
  const purge = parsed.flags.has("p");
  const damaged = check.badSlices > 0 || check.files.some((f) => f.status !== "intact");
  if (action === "verify") {
    out.result(summary(check));
    if (!damaged && purge) purgeSet(setPath, say);
    return !damaged ? Par2Exit.ok : check.repairable ? Par2Exit.repairPossible : Par2Exit.repairNotPossible;
  }
  if (damaged && !check.repairable) {
    out.result({ ...summary(check), repaired: [] });
    return Par2Exit.repairNotPossible;
  }
  // Nothing else runs meanwhile (create's thread hashes beside the workers): this thread computes a share, one worker fewer holds memory.
  // The check's garbage (tens of thousands of reads and hashes, the search) is collected before the products allocate: the peak was both.
  // Its read buffer too: reading is over.
  releaseScratch();
  Bun.gc(true);
  const { repairChecked } = await import("./repair.ts");
  // Through the products go the set's data bytes, a recovery slice in place of each one lost (as many bytes, but for a short last slice).
  const processing = progressLine(parsed, "Processing", () => check.set.entries.reduce((sum, entry) => sum + entry.description.length, 0));
  const result = await repairChecked(check, {
    threads: integerOption(parsed.options, "t", "the thread count", 1), shareCallingThread: true, memory: memoryOption(parsed) ?? REPAIR_MEMORY,
    onProgress: processing.onProgress,
  }).finally(() => processing.stop());
  sayDeadTemps(result.deadTempsRemoved ?? 0, say);
  if (result.failure) {
    say(`Repair Failed: ${result.failure}`, Noise.quiet);
    out.result({ ...summary(check), repaired: result.repaired, failure: result.failure });
    return Par2Exit.repairFailed;
  }
  // As par2cmdline re-verifies what it rebuilt: a `Target:` line for each (not for a renamed file put back).
  for (const path of result.repaired) {
    const name = check.files.find((file) => file.path === path)?.name ?? basename(path);
    if (!renamed.has(name)) say(`Target: "${name}" - found.`, Noise.quiet);
    say(`Repaired ${path}`, Noise.noisy);
  }
  if (result.repaired.length > 0) say("Repair complete.", Noise.quiet);
  out.result({ ...summary(check), repaired: result.repaired });
  if (purge) purgeSet(setPath, say);
  return Par2Exit.ok;
}

/**
 * -p: par2cmdline deletes the set's files (and its backups of damaged
 * files) once the data is whole. Blaine replaces damaged files atomically
 * and keeps no backups, so only the set's files go.
 */
function purgeSet(setPath: string, say: Say): void {
  purgeFiles(setFiles(setPath), say);
}

/** Deletes a set's files (-p), naming each. */
export function purgeFiles(paths: readonly string[], say: Say): void {
  // par2cmdline's lines, even with -q.
  if (paths.length > 0) say("Purge par files.", Noise.quiet);
  for (const path of paths) {
    rmSync(path, { force: true });
    say(`Remove "${basename(path)}".`, Noise.quiet);
  }
}

/**
 * par2cmdline's line for each extra file searched: what of the set it
 * holds. Returns the names of the set's files found whole in one of them
 * (renamed: par2cmdline counts them apart from the missing and damaged).
 */
function reportFound(check: SetCheck, extraFiles: readonly string[], say: Say): Set<string> {
  const entryOf = (index: number) => check.set.entries.find((entry) => index >= entry.firstSlice && index < entry.firstSlice + entry.checksums.length)!;
  const renamed = new Set<string>();
  for (const file of extraFiles) {
    const here = check.found.filter((slice) => slice.path === file);
    if (here.length === 0) {
      say(`File: "${basename(file)}" - no data found.`, Noise.quiet);
      continue;
    }
    const entries = new Set(here.map((slice) => entryOf(slice.index)));
    const [entry] = entries;
    const whole = entries.size === 1 && here.length === entry.checksums.length && statSync(file).size === entry.description.length;
    if (whole) renamed.add(entry.description.name);
    if (whole) say(`File: "${basename(file)}" - is a match for "${entry.description.name}".`, Noise.quiet);
    else say(`File: "${basename(file)}" - found ${here.length} data blocks from ${entries.size === 1 ? `"${entry.description.name}"` : "several target files"}.`, Noise.quiet);
  }
  return renamed;
}

/** par2cmdline's description of the set, before the files are checked. */
function reportSet(check: SetCheck, say: Say): void {
  const { set } = check;
  say(`There are ${set.entries.length} recoverable files and 0 other files.`);
  say(`The block size used was ${set.sliceSize} bytes.`);
  say(`There are a total of ${set.inputSlices} data blocks.`);
  say(`The total size of the data files is ${set.entries.reduce((sum, entry) => sum + entry.description.length, 0)} bytes.`);
}

/** A `Target:` line per file, as par2cmdline prints them while it verifies. */
function reportTargets(check: SetCheck, say: Say): void {
  for (const file of check.files) {
    const found = file.slices - file.badSlices.length;
    if (file.status === "intact") say(`Target: "${file.name}" - found.`, Noise.quiet);
    else if (file.status === "missing") say(`Target: "${file.name}" - missing.`, Noise.quiet);
    else say(`Target: "${file.name}" - damaged. Found ${found} of ${file.slices} data blocks.`, Noise.quiet);
    if (file.status === "damaged") say(`  damaged blocks: ${file.badSlices.join(", ")}`, Noise.noisy);
  }
  if (check.set.recoveryDamaged > 0) say(`${check.set.recoveryDamaged} recovery blocks are damaged or missing.`);
}

/**
 * par2cmdline's conclusions, which scripts grep: `All files are correct,
 * repair is not required.` or `Repair is required.`, the counts, and
 * `Repair is possible.` / `Repair is not possible.` with `You need N more
 * recovery blocks to be able to repair.`
 */
function reportSummary(check: SetCheck, renamed: ReadonlySet<string>, say: Say): void {
  const count = (status: string) => check.files.filter((f) => f.status === status && !renamed.has(f.name)).length;
  const damaged = count("damaged");
  const missing = count("missing");
  if (damaged + missing + renamed.size === 0 && check.badSlices === 0) {
    say("All files are correct, repair is not required.", Noise.quiet);
    return;
  }
  say("Repair is required.", Noise.quiet);
  if (renamed.size > 0) say(`${renamed.size} file(s) have the wrong name.`);
  if (missing > 0) say(`${missing} file(s) are missing.`);
  if (damaged > 0) say(`${damaged} file(s) exist but are damaged.`);
  if (count("intact") > 0) say(`${count("intact")} file(s) are ok.`);
  say(`You have ${check.set.inputSlices - check.badSlices} out of ${check.set.inputSlices} data blocks available.`);
  if (check.found.length > 0) say(`${check.found.length} of them were found in other places and will be copied into place.`, Noise.noisy);
  if (check.recoveryAvailable > 0) say(`You have ${check.recoveryAvailable} recovery blocks available.`);
  if (check.repairable) {
    say("Repair is possible.", Noise.quiet);
    if (check.recoveryAvailable > check.badSlices) say(`You have an excess of ${check.recoveryAvailable - check.badSlices} recovery blocks.`);
    if (check.badSlices > 0) say(`${check.badSlices} recovery blocks will be used to repair.`);
    else if (check.recoveryAvailable > 0) say("None of the recovery blocks will be used for the repair.");
  } else {
    say("Repair is not possible.", Noise.quiet);
    say(`You need ${check.badSlices - check.recoveryAvailable} more recovery blocks to be able to repair.`, Noise.quiet);
  }
}

function summary(check: SetCheck) {
  return {
    setPath: check.set.setPath,
    files: check.files.map(({ name, path, status, badSlices, slices }) => ({ name, path, status, damagedBlocks: badSlices.length, blocks: slices })),
    damagedBlocks: check.badSlices,
    foundElsewhere: check.found.length,
    recoveryBlocks: check.recoveryAvailable,
    recoveryBlocksDamaged: check.set.recoveryDamaged,
    repairable: check.repairable,
  };
}

/**
 * par2cmdline's `Scanning: N.N%` while a verify or repair reads the files,
 * and `Processing: N.N%` while the recovery data is computed (bytes of
 * `total` done), as a line redrawn on a terminal's stderr only: stdout
 * keeps par2cmdline's lines for scripts, and a large file's verify, create
 * or repair no longer sits silent for minutes. None with -q or -qq, as
 * par2cmdline's, nor with --json, and then `totalOf` is not called (a
 * create's is a stat of every file).
 */
function progressLine(parsed: ParsedArguments, what: "Scanning" | "Processing", totalOf: () => number): { onProgress?: (bytes: number) => void; stop: () => void } {
  if (noiseOf(parsed) < Noise.normal || parsed.json) return { stop: () => {} };
  const total = totalOf();
  if (total === 0) return { stop: () => {} };
  let done = 0;
  const line = new TerminalLine(() => `${what}: ${Math.min(100, (done / total) * 100).toFixed(1)}% (${formatBytes(Math.min(done, total))} of ${formatBytes(total)})`).start();
  return { onProgress: (bytes) => (done += bytes), stop: () => line.stop() };
}

/** Temps of a create or repair killed with SIGKILL, removed by this one: said once, as a line of its own. */
function sayDeadTemps(removed: number, say: Say): void {
  if (removed > 0) say(deadTempsLine(removed), Noise.quiet);
}
