/**
 * A small PAR 1.0 creator for tests (Debian packages none): SET.par and
 * SET.p01 … SET.pNN for the files given, through Blaine's own PAR1 layout
 * and codec, so the tests can prove both against the real par2cmdline.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { multiplyAccumulate, par1Coefficient } from "../../lib/par2/par1-codec.ts";
import { IN_PARITY, PAR1_FIRST_BYTES, par1FileBytes, type Par1EntryToWrite } from "../../lib/par2/par1-format.ts";
import { md5 } from "../../lib/par2/packets.ts";

/** Identifies these sets' creator in the version field ("program 0", as the spec calls it: undefined). */
const TEST_PROGRAM = 0x00000001;

export interface Par1SetOptions {
  /** How many recovery volumes (SET.p01 …). */
  readonly volumes: number;
  /** Files listed for checking only (status bit 0 clear): not in the recovery data. */
  readonly checkedOnly?: readonly string[];
}

/**
 * Writes SET.par (volume 0) and its volumes beside `setPath` (which ends in
 * `.par`) for `files`, named in the set by their base names. Returns the
 * paths written, index first.
 */
export function writePar1Set(setPath: string, files: readonly string[], options: Par1SetOptions): string[] {
  const checkedOnly = new Set(options.checkedOnly ?? []);
  const contents = files.map((path) => readFileSync(path));
  const entries: Par1EntryToWrite[] = files.map((path, i) => ({
    name: basename(path),
    size: contents[i].length,
    md5: md5(contents[i]),
    md5First16k: md5(contents[i].subarray(0, PAR1_FIRST_BYTES)),
    status: checkedOnly.has(path) ? 0 : IN_PARITY,
  }));
  // The recovery block is as long as the largest file listed (par2cmdline's rule, checked-only files included).
  const blockSize = Math.max(...contents.map((content) => content.length));
  const inParity = contents.filter((_, i) => !checkedOnly.has(files[i]));
  const written = [setPath];
  writeFileSync(setPath, par1FileBytes({ entries, volume: 0, programVersion: TEST_PROGRAM }));
  const base = setPath.replace(/\.par$/i, "");
  for (let volume = 1; volume <= options.volumes; volume++) {
    const data = new Uint8Array(blockSize);
    inParity.forEach((content, i) => multiplyAccumulate(data, content, par1Coefficient(i, volume)));
    const path = join(dirname(setPath), `${basename(base)}.p${String(volume).padStart(2, "0")}`);
    writeFileSync(path, par1FileBytes({ entries, volume, data, programVersion: TEST_PROGRAM }));
    written.push(path);
  }
  return written;
}
