/**
 * par2cmdline and ParPar as alternative parity engines (`--parity-engine
 * par2|parpar`). Each writes one recovery set for one file in a scratch
 * directory where the file is linked under its archived name; the parity
 * store then moves the set into place. Same slice size and redundancy as the
 * built-in engine, so every engine gives sets of the same shape.
 */
import { BlaineError, ExitCode } from "../errors.ts";
import { hasProgram, zx } from "./exec.ts";
import { notInstalled } from "./tool-versions.ts";

export type ExternalParityEngine = "par2" | "parpar";

export interface ExternalParityRequest {
  /** Scratch directory holding `fileName` (the data); the set is written here. */
  readonly dir: string;
  readonly fileName: string;
  /** Name of the index file, e.g. `sha1-….par2`. */
  readonly setName: string;
  readonly sliceSize: number;
  readonly recoverySlices: number;
}

export function requireParityEngine(engine: ExternalParityEngine): void {
  // Each engine's program has the engine's name.
  if (!hasProgram(engine)) {
    throw new BlaineError(`--parity-engine ${engine}: ${notInstalled(engine)}; use --parity-engine builtin`, ExitCode.usage);
  }
}

export async function createWithExternalEngine(engine: ExternalParityEngine, request: ExternalParityRequest): Promise<void> {
  const $ = await zx();
  const { dir, fileName, setName, sliceSize, recoverySlices } = request;
  const result =
    engine === "par2"
      ? // -n1: one vol file, as the built-in engine writes for the parity stage.
        await $({ cwd: dir })`par2 create -q -q -s${sliceSize} -c${recoverySlices} -n1 ${setName} -- ${fileName}`.nothrow()
      : await $({ cwd: dir })`parpar -s ${`${sliceSize}b`} -r ${String(recoverySlices)} -p ${String(recoverySlices)} -o ${setName} -- ${fileName}`.nothrow();
  if (result.exitCode !== 0) {
    throw new BlaineError(`${engine} failed creating parity for ${fileName}: ${(result.stderr || result.stdout).trim().split("\n").slice(-3).join(" ")}`);
  }
}
