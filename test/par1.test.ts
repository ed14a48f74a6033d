/**
 * PAR 1.0 sets (SET.par, SET.p01 …) verified and repaired by `blaine par2`
 * as par2cmdline 0.8.1 does (issue 13). Debian packages no PAR1 creator, so
 * the sets come from test/helpers/par1-writer.ts, which these tests first
 * prove against the real par2cmdline; then every case runs side by side:
 * the same set and damage in two directories, `par2` in one, `blaine par2`
 * in the other, the same exit codes and lines, the same bytes repaired.
 */
import { afterEach, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { md5 } from "../lib/par2/packets.ts";
import { hasProgram } from "../lib/system/exec.ts";
import { blaine } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { damage, seededBytes, tempDir } from "./helpers/fixture.ts";
import { writePar1Set } from "./helpers/par1-writer.ts";

setDefaultTimeout(120_000);

const hasPar2 = hasProgram("par2");
if (!hasPar2) console.log("skipped PAR 1.0 tests: par2 (par2cmdline) is not installed (apt-get install par2)");

const BIN = join(import.meta.dir, "..", "bin");

function par2(args: string[], cwd: string): { exitCode: number; output: string } {
  const result = Bun.spawnSync(["par2", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  return { exitCode: result.exitCode, output: result.stdout.toString() + result.stderr.toString() };
}

/**
 * The lines both print, in order: par2cmdline's without its progress and
 * loading lines (Blaine prints none), Blaine's without the two it adds
 * (`Repaired NAME`, and `File: … - is a match for …`, which par2cmdline
 * 0.8.1 means to print for PAR1 and does not).
 */
function lines(output: string): string[] {
  return output
    .split(/[\r\n]+/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !/^(Loading|Loaded|No new recovery|Scanning|Verifying|Computing|Constructing|Solving|Repairing|Writing|Wrote|Repaired )/.test(line))
    .filter((line) => !/ - is a match for /.test(line));
}

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ path: dir, cleanup } = tempDir("blaine-par1-")));
afterEach(() => cleanup());

/** Files of the sizes given (seeded), a PAR1 set of them with `volumes` volumes, in `stock/` and a copy in `ours/`. */
function twinSets(sizes: readonly number[], volumes: number): { originals: Map<string, Uint8Array>; stock: string; ours: string } {
  const stock = join(dir, "stock");
  mkdirSync(stock);
  const originals = new Map<string, Uint8Array>();
  sizes.forEach((size, i) => {
    const name = `f${String(i).padStart(2, "0")}.bin`;
    originals.set(name, seededBytes(size, 100 + i));
    writeFileSync(join(stock, name), originals.get(name)!);
  });
  writePar1Set(join(stock, "set.par"), [...originals.keys()].map((name) => join(stock, name)), { volumes });
  const ours = join(dir, "ours");
  cpSync(stock, ours, { recursive: true });
  return { originals, stock, ours };
}

/** The same command run by par2cmdline in `stock` and by blaine in `ours`. */
async function both(args: string[], stock: string, ours: string) {
  const theirs = par2(args, stock);
  const mine = await blaine(["par2", ...args], { cwd: ours });
  return { stock: { exitCode: theirs.exitCode, lines: lines(theirs.output) }, ours: { exitCode: mine.exitCode, lines: lines(mine.stdout + mine.stderr) } };
}

function expectWhole(where: string, originals: Map<string, Uint8Array>): void {
  for (const [name, bytes] of originals) expect(Buffer.compare(readFileSync(join(where, name)), bytes)).toBe(0);
}

test("kill -9: a PAR 1.0 repair's temp beside the file it rebuilds is removed by the next repair", async () => {
  const data = seededBytes(50_000, 9);
  writeFileSync(join(dir, "f.bin"), data);
  writeFileSync(join(dir, "g.bin"), seededBytes(40_000, 10));
  writePar1Set(join(dir, "set.par"), [join(dir, "f.bin"), join(dir, "g.bin")], { volumes: 1 });
  damage(join(dir, "f.bin"), 100, new Uint8Array(200).fill(1));
  const temps = () => readdirSync(dir).filter((name) => name.startsWith(".") && name.endsWith(".tmp"));
  await blaineKilledAt("par1-repair-before-commit:1", ["par2", "repair", "set.par"], { cwd: dir });
  expect(temps()).toHaveLength(1);
  const again = await blaine(["par2", "repair", "set.par"], { cwd: dir });
  expect(again.exitCode).toBe(0);
  expect(again.stdout).toContain("removed 1 temp file of a par2 create or repair killed before it finished");
  expect(temps()).toEqual([]);
  expect(Buffer.compare(readFileSync(join(dir, "f.bin")), data)).toBe(0);
});

describe("issue 13: PAR 1.0 sets, side by side with par2cmdline", () => {
  test.skipIf(!hasPar2)("the test writer's sets are real PAR 1.0: par2cmdline verifies them and repairs a missing and a damaged file from them", () => {
    const { originals, stock } = twinSets([100_000, 37_001, 5], 3);
    const intact = par2(["v", "set.par"], stock);
    expect(intact.exitCode).toBe(0);
    expect(intact.output).toContain("All files are correct, repair is not required.");
    rmSync(join(stock, "f00.bin"));
    damage(join(stock, "f01.bin"), 100, new Uint8Array([1, 2, 3, 4]));
    const repaired = par2(["r", "set.par"], stock);
    expect(repaired.exitCode).toBe(0);
    expect(repaired.output).toContain("Repair complete.");
    expectWhole(stock, originals);
  });

  test.skipIf(!hasPar2)("intact, a missing and a damaged file, beyond repair: the same exit codes and lines; both repair to the same bytes", async () => {
    const { originals, stock, ours } = twinSets([100_000, 37_001, 5, 65_536], 3);
    const intact = await both(["v", "set.par"], stock, ours);
    expect(intact.ours).toEqual(intact.stock);
    expect(intact.ours.exitCode).toBe(0);

    for (const where of [stock, ours]) {
      rmSync(join(where, "f00.bin"));
      damage(join(where, "f03.bin"), 65_000, new Uint8Array(9));
    }
    const repairable = await both(["v", "set.par"], stock, ours);
    expect(repairable.ours).toEqual(repairable.stock);
    expect(repairable.ours).toEqual({
      exitCode: 1,
      lines: [
        'Target: "f00.bin" - missing.', 'Target: "f01.bin" - found.', 'Target: "f02.bin" - found.', 'File: "f03.bin" - no data found.',
        "Repair is required.", "1 file(s) are missing.", "1 file(s) exist but are damaged.", "2 file(s) are ok.",
        "Repair is possible.", "You have an excess of 1 recovery files.", "2 recovery files will be used to repair.",
      ],
    });
    const quiet = await both(["v", "-q", "set.par"], stock, ours);
    expect(quiet.ours).toEqual(quiet.stock);
    const silent = await both(["v", "-qq", "set.par"], stock, ours);
    expect(silent.ours).toEqual({ exitCode: 1, lines: [] });
    expect(silent.stock).toEqual(silent.ours);

    for (const where of [stock, ours]) rmSync(join(where, "f01.bin"));
    for (const where of [stock, ours]) rmSync(join(where, "f02.bin"));
    const beyond = await both(["v", "set.par"], stock, ours);
    expect(beyond.ours).toEqual(beyond.stock);
    expect(beyond.ours.exitCode).toBe(2);
    expect(beyond.ours.lines.slice(-2)).toEqual(["Repair is not possible.", "You need 1 more recovery files to be able to repair."]);
    const refused = await both(["r", "set.par"], stock, ours);
    expect(refused.ours.exitCode).toBe(refused.stock.exitCode);
    expect(existsSync(join(ours, "f00.bin"))).toBe(false);

    // One file back: three to rebuild from three volumes.
    for (const where of [stock, ours]) writeFileSync(join(where, "f02.bin"), originals.get("f02.bin")!);
    const repaired = await both(["r", "set.par"], stock, ours);
    expect(repaired.stock.exitCode).toBe(0);
    expect(repaired.ours.exitCode).toBe(0);
    expect(repaired.ours.lines.at(-1)).toBe("Repair complete.");
    expectWhole(stock, originals);
    expectWhole(ours, originals);
    // Blaine keeps no backup of the damaged file (par2cmdline leaves f03.bin.1).
    expect(readdirSync(ours).filter((name) => !name.startsWith("set.")).sort()).toEqual([...originals.keys()]);
    const after = await both(["v", "set.par"], stock, ours);
    expect(after.ours).toEqual({ exitCode: 0, lines: [...originals.keys()].map((name) => `Target: "${name}" - found.`).concat("All files are correct, repair is not required.") });
  });

  test.skipIf(!hasPar2)("a renamed file given on the command line is found and put back under its name, with no recovery volume", async () => {
    const { originals, stock, ours } = twinSets([50_000, 20_000], 1);
    for (const where of [stock, ours]) renameSync(join(where, "f00.bin"), join(where, "renamed.dat"));
    const verified = await both(["v", "set.par", "renamed.dat"], stock, ours);
    expect(verified.ours).toEqual(verified.stock);
    expect(verified.ours.exitCode).toBe(1);
    expect(verified.ours.lines).toContain("1 file(s) have the wrong name.");
    expect(verified.ours.lines).toContain("None of the recovery files will be used for the repair.");
    // Only the renamed file can supply the data: without the volume.
    for (const where of [stock, ours]) rmSync(join(where, "set.p01"));
    const repaired = await both(["r", "set.par", "renamed.dat"], stock, ours);
    expect(repaired.ours.exitCode).toBe(0);
    expect(repaired.stock.exitCode).toBe(0);
    expectWhole(stock, originals);
    expectWhole(ours, originals);
    // par2cmdline moves the file; Blaine copies it and leaves the one given as it is.
    expect(Buffer.compare(readFileSync(join(ours, "renamed.dat")), originals.get("f00.bin")!)).toBe(0);
  });

  test.skipIf(!hasPar2)("twenty files, five rebuilt from five of seven volumes (two volumes damaged), in small memory ranges", async () => {
    // Up to 1.5 MB each: with -m 1 the rebuild runs in several byte ranges.
    const sizes = Array.from({ length: 20 }, (_, i) => 3000 + i * 79_190);
    const { originals, stock, ours } = twinSets(sizes, 7);
    for (const where of [stock, ours]) {
      for (const name of ["f01.bin", "f04.bin", "f09.bin", "f16.bin"]) rmSync(join(where, name));
      damage(join(where, "f19.bin"), 0, new Uint8Array([0xff]));
      // A damaged volume is not used (its control hash fails); another serves.
      damage(join(where, "set.p02"), 500, new Uint8Array([1]));
      damage(join(where, "set.p05"), 0x30, new Uint8Array([9]));
    }
    const verified = await both(["v", "set.par"], stock, ours);
    expect(verified.ours.exitCode).toBe(verified.stock.exitCode);
    expect(verified.ours.exitCode).toBe(1);
    // Blaine names the volumes it does not use; par2cmdline passes over them.
    expect(verified.ours.lines.filter((line) => !line.startsWith("Not using"))).toEqual(verified.stock.lines);
    expect(verified.ours.lines.filter((line) => line.startsWith("Not using"))).toHaveLength(2);
    const stockRepair = par2(["r", "set.par"], stock);
    expect(stockRepair.exitCode).toBe(0);
    const ourRepair = await blaine(["par2", "r", "-m", "1", "set.par"], { cwd: ours });
    expect(ourRepair.exitCode).toBe(0);
    expectWhole(stock, originals);
    expectWhole(ours, originals);
  });

  test.skipIf(!hasPar2)("volumes whose equations are dependent for the files lost are passed over for another (par2cmdline aborts there)", async () => {
    // Files 1 and 10 (bases 1 and 10) have equal coefficients in volume 6 (10^5 = 1 in GF(2^8)): volumes 1 and 6 cannot tell them apart.
    const { originals, stock, ours } = twinSets(Array.from({ length: 10 }, (_, i) => 1000 + 37 * i), 7);
    for (const where of [stock, ours]) {
      for (const volume of ["02", "03", "04", "05"]) rmSync(join(where, `set.p${volume}`));
      rmSync(join(where, "f00.bin"));
      rmSync(join(where, "f09.bin"));
    }
    const stockRepair = par2(["r", "set.par"], stock);
    expect(stockRepair.exitCode).not.toBe(0);
    const ourRepair = await blaine(["par2", "r", "set.par"], { cwd: ours });
    expect(ourRepair.exitCode).toBe(0);
    expectWhole(ours, originals);
  });

  test.skipIf(!hasPar2)("a set named by a volume, by its data name, or with the index lost; par2verify by name; --json", async () => {
    const { originals, stock, ours } = twinSets([10_000, 9_000, 8_000], 2);
    for (const where of [stock, ours]) {
      renameSync(join(where, "set.par"), join(where, "index.keep"));
      rmSync(join(where, "f02.bin"));
    }
    const byVolume = await both(["v", "set.p02"], stock, ours);
    expect(byVolume.ours).toEqual(byVolume.stock);
    expect(byVolume.ours.exitCode).toBe(1);
    // "set" names set.par2, else set.par.
    for (const where of [stock, ours]) renameSync(join(where, "index.keep"), join(where, "set.par"));
    const byName = await both(["v", "set"], stock, ours);
    expect(byName.ours.exitCode).toBe(1);
    expect(byName.ours).toEqual(byName.stock);
    const program = Bun.spawnSync(["bun", join(BIN, "par2repair.ts"), "set.par"], { cwd: ours, stdout: "pipe", stderr: "pipe" });
    expect(program.exitCode).toBe(0);
    expectWhole(ours, originals);
    const json = await blaine(["par2", "v", "--json", "set.par"], { cwd: ours });
    expect(json.exitCode).toBe(0);
    const result = JSON.parse(json.stdout);
    expect(result.format).toBe("PAR 1.0");
    expect(result.files.map((file: { status: string }) => file.status)).toEqual(["found", "found", "found"]);
  });

  test.skipIf(!hasPar2)("a volume whose recovery data is wrong (its control hash made to match): the repair fails with exit 5 and changes nothing", async () => {
    const { originals, stock, ours } = twinSets([12_000, 8_000], 1);
    for (const where of [stock, ours]) {
      const volume = readFileSync(join(where, "set.p01"));
      volume[volume.length - 100] ^= 0xff;
      volume.set(md5(volume.subarray(0x20)), 0x10);
      writeFileSync(join(where, "set.p01"), volume);
      writeFileSync(join(where, "f00.bin"), Buffer.concat([originals.get("f00.bin")!.subarray(0, 6000), new Uint8Array(6000)]));
    }
    const stockRepair = par2(["r", "set.par"], stock);
    const ourRepair = await blaine(["par2", "r", "set.par"], { cwd: ours });
    expect(stockRepair.exitCode).toBe(5);
    expect(ourRepair.exitCode).toBe(5);
    expect(ourRepair.stderr).toContain("Repair Failed");
    // The damaged file is left as it was (par2cmdline moves it to f00.bin.1), and no temp is left behind.
    expect(readFileSync(join(ours, "f00.bin")).subarray(6000).every((byte) => byte === 0)).toBe(true);
    expect(readdirSync(ours).sort()).toEqual(["f00.bin", "f01.bin", "set.p01", "set.par"]);
  });

  test.skipIf(!hasPar2)("-p purges the set once the files are whole, as par2cmdline does", async () => {
    const { originals, stock, ours } = twinSets([4000, 3000], 2);
    for (const where of [stock, ours]) rmSync(join(where, "f01.bin"));
    const repaired = await both(["r", "-p", "set.par"], stock, ours);
    expect(repaired.ours.exitCode).toBe(0);
    expect(repaired.stock.exitCode).toBe(0);
    for (const where of [stock, ours]) expect(readdirSync(where).filter((name) => name.startsWith("set."))).toEqual([]);
    expectWhole(ours, originals);
  });
});
