/**
 * `blaine par2 create|verify|repair`: the built-in PAR2 engine as a
 * standalone tool, with par2cmdline's option names and meanings, so
 * switching is a matter of the command name:
 *   create [-r PERCENT] [-b BLOCKCOUNT | -s BLOCKSIZE] [-c RECOVERYBLOCKS] [-n RECOVERYFILES] [-f FIRSTBLOCK] [-t THREADS] SET.par2 FILE…
 *   verify SET.par2 [FILE…]      repair SET.par2 [FILE…]
 * Options take their value attached (-r10) or as the next argument (-r 10).
 * FILEs after verify/repair are where set files are now (matched by name).
 */
import { statSync } from "node:fs";
import { basename, dirname, relative, resolve, sep } from "node:path";
import { BlaineError, ExitCode, errorMessage, UsageError, type ExitCode as ExitCodeValue } from "../errors.ts";
import { createRecoverySet } from "../par2/create.ts";
import { repairChecked } from "../par2/repair.ts";
import { loadRecoverySet, RecoverySetError } from "../par2/recovery-set.ts";
import { checkFiles, defaultLocation, type SetCheck } from "../par2/verify.ts";
import { formatBytes } from "../size.ts";
import type { Output } from "./output.ts";

const USAGE =
  "usage: blaine par2 create [-r PERCENT] [-b BLOCKCOUNT | -s BLOCKSIZE] [-c RECOVERYBLOCKS] [-n RECOVERYFILES] SET.par2 FILE…\n" +
  "       blaine par2 verify SET.par2 [FILE…]\n" +
  "       blaine par2 repair SET.par2 [FILE…]";

const VALUE_OPTIONS = new Set(["r", "b", "s", "c", "n", "f", "t"]);
const FLAG_OPTIONS = new Set(["q", "v"]);

interface ParsedArguments {
  readonly options: Map<string, string>;
  readonly positional: string[];
  readonly json: boolean;
}

function parseArguments(args: readonly string[]): ParsedArguments {
  const options = new Map<string, string>();
  const positional: string[] = [];
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (arg === "--json") json = true;
    else if (/^-[a-zA-Z]/.test(arg) && !arg.startsWith("--")) {
      const letter = arg[1];
      if (FLAG_OPTIONS.has(letter) && arg.length === 2) continue;
      if (!VALUE_OPTIONS.has(letter)) throw new UsageError(`par2: unknown option ${arg}\n${USAGE}`);
      const value = arg.length > 2 ? arg.slice(2) : args[++i];
      if (value === undefined) throw new UsageError(`par2: option -${letter} needs a value\n${USAGE}`);
      options.set(letter, value);
    } else if (arg.startsWith("--")) throw new UsageError(`par2: unknown option ${arg}\n${USAGE}`);
    else positional.push(arg);
  }
  return { options, positional, json };
}

function integerOption(options: Map<string, string>, letter: string, what: string, minimum = 0): number | undefined {
  const text = options.get(letter);
  if (text === undefined) return undefined;
  const cleaned = letter === "r" ? text.replace(/%$/, "") : text;
  const value = Number(cleaned);
  if (!/^\d+$/.test(cleaned) || value < minimum) throw new UsageError(`par2: -${letter} ${text}: ${what} must be an integer ≥ ${minimum}`);
  return value;
}

/** Runs `blaine par2 ACTION ARGS…` and returns the exit code. */
export async function par2Command(action: string | undefined, args: readonly string[], output: (json: boolean) => Output): Promise<ExitCodeValue> {
  const parsed = parseArguments(args);
  const out = output(parsed.json);
  try {
    if (action === "create") return await create(parsed, out);
    if (action === "verify" || action === "repair") return await verifyOrRepair(action, parsed, out);
  } catch (error) {
    if (error instanceof BlaineError) throw error;
    if (error instanceof RangeError || error instanceof RecoverySetError) throw new BlaineError(`par2 ${action}: ${error.message}`, ExitCode.usage);
    throw new BlaineError(`par2 ${action}: ${errorMessage(error)}`);
  }
  throw new UsageError(action ? `par2: unknown action "${action}" (known: create, verify, repair)\n${USAGE}` : USAGE);
}

async function create(parsed: ParsedArguments, out: Output): Promise<ExitCodeValue> {
  const { options, positional } = parsed;
  const [setPath, ...files] = positional;
  if (!setPath || files.length === 0) throw new UsageError(`par2 create: give SET.par2 and at least one FILE\n${USAGE}`);
  if (!/\.par2$/i.test(setPath)) throw new UsageError(`par2 create: ${setPath}: the set's name must end in .par2`);
  if (options.has("b") && options.has("s")) throw new UsageError("par2 create: give either -b BLOCKCOUNT or -s BLOCKSIZE, not both");
  if (options.has("r") && options.has("c")) throw new UsageError("par2 create: give either -r PERCENT or -c RECOVERYBLOCKS, not both");
  const directory = resolve(dirname(setPath));
  const setFiles = files.map((file) => {
    let stats;
    try {
      stats = statSync(file);
    } catch {
      throw new UsageError(`par2 create: ${file}: no such file`);
    }
    if (!stats.isFile()) throw new UsageError(`par2 create: ${file}: not a regular file`);
    const name = relative(directory, resolve(file));
    if (name.startsWith(`..${sep}`) || name === "..") throw new UsageError(`par2 create: ${file} is outside ${directory}, where ${basename(setPath)} is (PAR2 names files relative to the set)`);
    return { path: file, name: name.split(sep).join("/") };
  });
  const built = await createRecoverySet(setPath, {
    files: setFiles,
    redundancy: integerOption(options, "r", "the redundancy"),
    blockCount: integerOption(options, "b", "the block count", 1),
    sliceSize: integerOption(options, "s", "the block size", 4),
    recoveryCount: integerOption(options, "c", "the recovery block count"),
    recoveryFileCount: integerOption(options, "n", "the recovery file count", 1),
    firstExponent: integerOption(options, "f", "the first recovery block"),
    threads: integerOption(options, "t", "the thread count", 1),
  });
  const written = built.paths;
  for (const name of built.skippedEmpty) out.say(`Skipping ${name}: empty files need no recovery data.`);
  out.say(`${built.inputSlices} source blocks of ${formatBytes(built.sliceSize)}, ${built.recoveryCount} recovery blocks; wrote ${written.length} files:`);
  for (const path of written) out.say(`  ${path}`);
  out.result({ setPath, sliceSize: built.sliceSize, sourceBlocks: built.inputSlices, recoveryBlocks: built.recoveryCount, files: written, skippedEmpty: built.skippedEmpty });
  return ExitCode.ok;
}

async function verifyOrRepair(action: "verify" | "repair", parsed: ParsedArguments, out: Output): Promise<ExitCodeValue> {
  const [setPath, ...extra] = parsed.positional;
  if (!setPath) throw new UsageError(`par2 ${action}: give SET.par2\n${USAGE}`);
  const set = loadRecoverySet(setPath);
  const byName = new Map(extra.map((file) => [basename(file), file]));
  const fallback = defaultLocation(setPath);
  // One file for a one-file set may have any name (a renamed file, an archived copy).
  const only = set.entries.length === 1 && extra.length === 1 ? extra[0] : undefined;
  const locate = (name: string) => byName.get(basename(name)) ?? only ?? fallback(name);
  const check = await checkFiles(set, { locate });
  report(check, out);
  if (action === "verify") {
    out.result(summary(check));
    return check.badSlices > 0 || check.files.some((f) => f.status !== "intact") ? ExitCode.damage : ExitCode.ok;
  }
  const result = await repairChecked(check, { threads: integerOption(parsed.options, "t", "the thread count", 1) });
  if (result.failure) {
    out.say(`Repair is not possible: ${result.failure}`);
    out.result({ ...summary(check), repaired: result.repaired, failure: result.failure });
    return ExitCode.damage;
  }
  for (const path of result.repaired) out.say(`Repaired ${path}`);
  if (result.repaired.length === 0) out.say("All files are intact; no repair needed.");
  out.result({ ...summary(check), repaired: result.repaired });
  return ExitCode.ok;
}

function report(check: SetCheck, out: Output): void {
  for (const file of check.files) {
    const detail = file.status === "damaged" ? ` (${file.badSlices.length} of ${file.slices} blocks damaged)` : "";
    out.say(`${file.status.toUpperCase().padEnd(7)} ${file.path}${detail}`);
  }
  if (check.set.recoveryDamaged > 0) out.say(`${check.set.recoveryDamaged} recovery blocks are damaged or missing.`);
  const damaged = check.files.some((f) => f.status !== "intact");
  if (!damaged) out.say("All files are intact.");
  else if (check.repairable) out.say(`Repair is possible: ${check.badSlices} blocks to rebuild, ${check.recoveryAvailable} recovery blocks available.`);
  else out.say(`Repair is not possible: ${check.badSlices} blocks damaged, only ${check.recoveryAvailable} recovery blocks available.`);
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
