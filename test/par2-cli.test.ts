/**
 * `blaine par2` against the real par2cmdline: sets made by Blaine pass
 * `par2 verify` and are repaired by `par2 repair`; sets made by par2cmdline
 * are verified and repaired by Blaine; edge sizes and limits; exit codes.
 */
import { afterEach, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hasProgram } from "../lib/system/exec.ts";
import { blaine } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { damage, seededBytes, tempDir } from "./helpers/fixture.ts";

setDefaultTimeout(120_000);

const hasPar2 = hasProgram("par2");
if (!hasPar2) console.log("skipped par2cmdline interoperability tests: par2 is not installed (apt-get install par2)");

function par2(args: string[], cwd: string): { exitCode: number; output: string } {
  const result = Bun.spawnSync(["par2", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  return { exitCode: result.exitCode, output: result.stdout.toString() + result.stderr.toString() };
}

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ path: dir, cleanup } = tempDir("blaine-par2-cli-")));
afterEach(() => cleanup());

describe("sets made by blaine par2 create", () => {
  test.skipIf(!hasPar2).each([
    ["one slice exactly", [4096], ["-s", "4096", "-c", "2"]],
    ["size not a multiple of the slice size", [100_003, 17], ["-r10"]],
    ["very small files", [1, 3, 4, 10], ["-r", "50"]],
    ["a 10 KB file with the default sizing", [10_000], []],
    ["the most input slices (32768)", [131_072], ["-b", "32768", "-c", "3"]],
    ["several vol files (-n)", [64_000], ["-s", "1024", "-c", "9", "-n", "3"]],
  ] as const)("pass par2 verify: %s", async (_, sizes, options) => {
    const names = sizes.map((_, i) => `file${i}.bin`);
    sizes.forEach((size, i) => writeFileSync(join(dir, names[i]), seededBytes(size, i + 10)));
    const created = await blaine(["par2", "create", ...options, "set.par2", ...names], { cwd: dir });
    expect(created.exitCode).toBe(0);
    const verified = par2(["verify", "-q", "set.par2"], dir);
    expect(verified.output).toContain("All files are correct");
    expect(verified.exitCode).toBe(0);
    expect((await blaine(["par2", "verify", "set.par2"], { cwd: dir })).exitCode).toBe(0);
  }, 30_000);

  test.skipIf(!hasPar2)("issue 13.1: -m 1 (recovery computed in many short ranges, in threads) gives the bytes of the default and repairs alike", async () => {
    const original = seededBytes(3_000_000, 31);
    for (const where of ["small", "default"]) {
      mkdirSync(join(dir, where));
      writeFileSync(join(dir, where, "film.mkv"), original);
    }
    // 200 recovery blocks of 30 000 bytes: 6 MB of recovery data, computed a few KB of each block at a time.
    const options = ["-s30000", "-c200", "-t2"];
    expect((await blaine(["par2", "create", ...options, "-m1", "set.par2", "film.mkv"], { cwd: join(dir, "small") })).exitCode).toBe(0);
    expect((await blaine(["par2", "create", ...options, "set.par2", "film.mkv"], { cwd: join(dir, "default") })).exitCode).toBe(0);
    const vols = readdirSync(join(dir, "default")).filter((name) => name.endsWith(".par2")).sort();
    expect(readdirSync(join(dir, "small")).filter((name) => name.endsWith(".par2")).sort()).toEqual(vols);
    for (const name of vols) expect(Buffer.compare(readFileSync(join(dir, "small", name)), readFileSync(join(dir, "default", name)))).toBe(0);
    expect(par2(["verify", "-q", "set.par2"], join(dir, "small")).output).toContain("All files are correct");
    // 60 blocks lost, rebuilt in short ranges too.
    damage(join(dir, "small", "film.mkv"), 300_000, new Uint8Array(60 * 30_000));
    const repaired = await blaine(["par2", "repair", "-m1", "-t2", "set.par2"], { cwd: join(dir, "small") });
    expect(repaired.exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, "small", "film.mkv")), Buffer.from(original))).toBe(0);
  });

  test.skipIf(!hasPar2)("flipped bytes, zeroed ranges and truncation: repaired by blaine and by par2cmdline", async () => {
    const original = seededBytes(500_000, 21);
    writeFileSync(join(dir, "film.mkv"), original);
    expect((await blaine(["par2", "create", "-s", "4096", "-r", "20", "set.par2", "film.mkv"], { cwd: dir })).exitCode).toBe(0);
    const spoil = () => {
      writeFileSync(join(dir, "film.mkv"), original);
      damage(join(dir, "film.mkv"), 1234, new Uint8Array([original[1234] ^ 0x55, original[1235] ^ 1]));
      damage(join(dir, "film.mkv"), 200_000, new Uint8Array(20_000));
      truncateSync(join(dir, "film.mkv"), 480_000);
    };

    spoil();
    const verify = await blaine(["par2", "verify", "set.par2", "--json"], { cwd: dir });
    expect(verify.exitCode).toBe(1); // par2cmdline's "repair is possible"
    expect(verify.json.files[0].status).toBe("damaged");
    const repair = await blaine(["par2", "repair", "set.par2"], { cwd: dir });
    expect(repair.exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, "film.mkv")), original)).toBe(0);

    spoil();
    const stock = par2(["repair", "-q", "set.par2"], dir);
    expect(stock.exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, "film.mkv")), original)).toBe(0);
  }, 30_000);

  test("a lost file of 2000 slices is rebuilt from 2000 recovery slices; with one recovery file lost too, from the next ones", async () => {
    const original = seededBytes(1_000_000, 23);
    writeFileSync(join(dir, "film.mkv"), original);
    expect((await blaine(["par2", "create", "-q", "-b2000", "-c2010", "set.par2", "film.mkv"], { cwd: dir })).exitCode).toBe(0);
    // All recovery slices there: the first 2000 exponents (the closed-form inverse).
    rmSync(join(dir, "film.mkv"));
    expect((await blaine(["par2", "repair", "-q", "set.par2"], { cwd: dir })).exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, "film.mkv")), original)).toBe(0);
    // Exponents 3–6 lost with their file: a window with a gap, inverted by elimination (300 slices keep it short).
    writeFileSync(join(dir, "short.bin"), original.subarray(0, 300_000));
    expect((await blaine(["par2", "create", "-q", "-b300", "-c310", "short.par2", "short.bin"], { cwd: dir })).exitCode).toBe(0);
    rmSync(join(dir, readdirSync(dir).find((name) => /^short\.vol0*3\+0*4\.par2$/.test(name))!));
    rmSync(join(dir, "short.bin"));
    expect((await blaine(["par2", "repair", "-q", "short.par2"], { cwd: dir })).exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, "short.bin")), original.subarray(0, 300_000))).toBe(0);
  }, 60_000);

  test.skipIf(!hasPar2)("one-character file names", async () => {
    writeFileSync(join(dir, "a"), seededBytes(5000, 31));
    expect((await blaine(["par2", "create", "-r", "20", "x.par2", "a"], { cwd: dir })).exitCode).toBe(0);
    const stock = par2(["verify", "-q", "x.par2"], dir);
    if (stock.exitCode !== 0) {
      // par2cmdline 0.8.1 mishandles one-character names; the built-in verifier checks the same set.
      console.log(`par2cmdline could not verify a one-character file name (known par2cmdline 0.8.1 bug): ${stock.output.trim().split("\n").pop()}`);
    } else {
      expect(stock.output).toContain("All files are correct");
    }
    expect((await blaine(["par2", "verify", "x.par2"], { cwd: dir })).exitCode).toBe(0);
    damage(join(dir, "a"), 10, new Uint8Array(100));
    expect((await blaine(["par2", "verify", "x.par2"], { cwd: dir })).exitCode).toBe(1);
    expect((await blaine(["par2", "repair", "x.par2"], { cwd: dir })).exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, "a")), seededBytes(5000, 31))).toBe(0);
  }, 30_000);
});

describe("sets made by par2cmdline", () => {
  test.skipIf(!hasPar2)("are verified and repaired by blaine par2", async () => {
    const files = { "one.bin": seededBytes(70_000, 41), "two.bin": seededBytes(33_333, 42) };
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    const made = par2(["create", "-q", "-s2048", "-r15", "set.par2", "one.bin", "two.bin"], dir);
    expect(made.exitCode).toBe(0);
    expect((await blaine(["par2", "verify", "set.par2"], { cwd: dir })).exitCode).toBe(0);
    damage(join(dir, "one.bin"), 5000, new Uint8Array(6000));
    truncateSync(join(dir, "two.bin"), 30_000);
    const repair = await blaine(["par2", "repair", "set.par2"], { cwd: dir });
    expect(repair.exitCode).toBe(0);
    for (const [name, bytes] of Object.entries(files)) expect(Buffer.compare(readFileSync(join(dir, name)), bytes)).toBe(0);
  }, 30_000);
});

describe("kill -9", () => {
  const temps = () => readdirSync(dir).filter((name) => name.startsWith(".") && name.endsWith(".tmp"));

  test("kill -9: a par2 create's temps beside the set are removed by the next create of the set", async () => {
    const data = seededBytes(300_000, 7);
    writeFileSync(join(dir, "f"), data);
    await blaineKilledAt("par2-create-before-commit:1", ["par2", "create", "-r10", "-n", "2", "set.par2", "f"], { cwd: dir });
    expect(temps().length).toBeGreaterThanOrEqual(2);
    expect(readdirSync(dir).filter((name) => name.endsWith(".par2"))).toEqual([]);
    const again = await blaine(["par2", "create", "-r10", "-n", "2", "set.par2", "f"], { cwd: dir });
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toMatch(/removed \d+ temp files? of a par2 create or repair killed before it finished/);
    expect(temps()).toEqual([]);
    damage(join(dir, "f"), 1000, new Uint8Array(5000).fill(1));
    expect((await blaine(["par2", "repair", "set.par2"], { cwd: dir })).exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, "f")), data)).toBe(0);
  });

  test("kill -9: a par2 repair's temp beside the damaged file is removed by the next repair", async () => {
    const data = seededBytes(300_000, 8);
    writeFileSync(join(dir, "f"), data);
    expect((await blaine(["par2", "create", "-r10", "set.par2", "f"], { cwd: dir })).exitCode).toBe(0);
    damage(join(dir, "f"), 1000, new Uint8Array(5000).fill(1));
    await blaineKilledAt("par2-repair-before-rename:1", ["par2", "repair", "set.par2"], { cwd: dir });
    expect(temps()).toHaveLength(1);
    const again = await blaine(["par2", "repair", "set.par2"], { cwd: dir });
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain("removed 1 temp file of a par2 create or repair killed before it finished");
    expect(temps()).toEqual([]);
    expect(Buffer.compare(readFileSync(join(dir, "f")), data)).toBe(0);
  });
});

describe("usage and limits", () => {
  test("takes --config, --db and --dest like every command (par2 needs no catalog or disk)", async () => {
    writeFileSync(join(dir, "f"), seededBytes(1000, 1));
    const created = await blaine(["par2", "create", "--config", join(dir, "none.toml"), "--db=" + join(dir, "none.db"), "--dest", dir, "s.par2", "f"], { cwd: dir });
    expect(created.exitCode).toBe(0);
    expect((await blaine(["par2", "verify", "--db", join(dir, "none.db"), "s.par2"], { cwd: dir })).exitCode).toBe(0);
    expect(readdirSync(dir).filter((name) => name.endsWith(".toml") || name.endsWith(".db"))).toEqual([]);
    const missing = await blaine(["par2", "verify", "s.par2", "--db"], { cwd: dir });
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr).toContain("option --db needs a value");
  });

  test("bad options exit 3 (par2cmdline's code) and name the option", async () => {
    writeFileSync(join(dir, "f"), seededBytes(1000, 1));
    const cases: [string[], RegExp][] = [
      [["par2", "create", "-s", "6", "s.par2", "f"], /block size 6 must be a positive multiple of 4/],
      [["par2", "create", "-s", "4", "-b", "10", "s.par2", "f"], /either -b BLOCKCOUNT or -s BLOCKSIZE/],
      [["par2", "create", "-c", "65536", "s.par2", "f"], /65535/],
      [["par2", "create", "-b", "40000", "s.par2", "f"], /32768/],
      [["par2", "create", "-x", "s.par2", "f"], /unknown option -x/],
      [["par2", "create", "s.par2", "missing"], /missing: no such file/],
      [["par2", "verify", "-u", "s.par2"], /-u applies only to create/],
      [["par2", "create", "-p", "s.par2", "f"], /-p applies only to verify and repair/],
      [["par2", "create", "-u", "-l", "s.par2", "f"], /either -u .* or -l/],
      [["par2", "create", "-l", "-n", "2", "s.par2", "f"], /either -l .* or -n/],
      [["par2", "create", "-q", "-v", "s.par2", "f"], /either -q or -v/],
      [["par2", "verify", "-S", "10", "s.par2"], /-S .* needs -N/],
      [["par2", "create", "-c", "3", "-n", "4", "s.par2", "f"], /4 recovery files for 3 recovery blocks/],
      [["par2", "verify", "nothing.par2"], /nothing\.par2/],
      [["par2", "frobnicate"], /unknown action "frobnicate"/],
    ];
    for (const [args, message] of cases) {
      const result = await blaine(args, { cwd: dir });
      // par2cmdline's exit code for a bad command line.
      expect({ args, exitCode: result.exitCode }).toEqual({ args, exitCode: 3 });
      expect(result.stderr).toMatch(message);
    }
    expect(readdirSync(dir)).toEqual(["f"]);
  }, 30_000);

  test("65535 recovery slices (the most PAR2 allows) and too much damage exits 2 (par2cmdline's code)", async () => {
    writeFileSync(join(dir, "tiny"), seededBytes(40, 2));
    expect((await blaine(["par2", "create", "-s", "4", "-c", "65535", "-n", "1", "t.par2", "tiny"], { cwd: dir })).exitCode).toBe(0);
    const verify = await blaine(["par2", "verify", "t.par2", "--json"], { cwd: dir });
    expect(verify.json.recoveryBlocks).toBe(65535);
    writeFileSync(join(dir, "big"), seededBytes(8000, 3));
    expect((await blaine(["par2", "create", "-s", "1000", "-c", "1", "b.par2", "big"], { cwd: dir })).exitCode).toBe(0);
    damage(join(dir, "big"), 0, new Uint8Array(3000));
    const repair = await blaine(["par2", "repair", "b.par2"], { cwd: dir });
    expect(repair.exitCode).toBe(2); // par2cmdline's "repair is not possible"
    expect(repair.stdout).toMatch(/Repair is not possible/);
  }, 30_000);
});

/** The par2 files a directory holds, sorted: the layout a create made. */
function setLayout(directory: string): string[] {
  return readdirSync(directory).filter((name) => name.endsWith(".par2")).sort();
}

describe("the same options as par2cmdline give the same set", () => {
  const files = { "big.bin": seededBytes(102_400, 51), "small.bin": seededBytes(30_000, 52) };
  function twoCopies(): { stock: string; ours: string } {
    const stock = join(dir, "stock");
    const ours = join(dir, "ours");
    for (const where of [stock, ours]) {
      mkdirSync(where);
      for (const [name, bytes] of Object.entries(files)) writeFileSync(join(where, name), bytes);
    }
    return { stock, ours };
  }

  test.skipIf(!hasPar2).each([
    ["default spread (1, 2, 4, 8, 10)", ["-b25", "-c25"]],
    ["-n: doubling files (4, 8, 13)", ["-b25", "-c25", "-n3"]],
    ["-n with more files than doubling fills (a volN+0 file)", ["-b100", "-c3", "-n3"]],
    ["-u: uniform files", ["-b25", "-c25", "-u"]],
    ["-u -n: uniform over N files (9, 8, 8)", ["-b25", "-c25", "-u", "-n3"]],
    ["-l: files no larger than the largest source file", ["-b10", "-c40", "-l"]],
    ["-f: names padded to the highest exponent", ["-b100", "-c9", "-f95"]],
    ["-r: one-digit names", ["-b100", "-r7"]],
    ["accepted and without effect on the files: -m, -T, -t, -q, -v", ["-b25", "-c25", "-m16", "-T2", "-t2", "-q"]],
  ] as const)("%s", async (_, options) => {
    const { stock, ours } = twoCopies();
    const names = Object.keys(files);
    expect(par2(["create", "-q", "-q", ...options, "set.par2", ...names], stock).exitCode).toBe(0);
    const created = await blaine(["par2", "create", ...options, "set.par2", ...names], { cwd: ours });
    expect(created.exitCode).toBe(0);
    expect(setLayout(ours)).toEqual(setLayout(stock));
    // Each tool verifies the other's set.
    expect((await blaine(["par2", "verify", "set.par2"], { cwd: stock })).exitCode).toBe(0);
    expect(par2(["verify", "-q", "set.par2"], ours).output).toContain("All files are correct");
  });

  test.skipIf(!hasPar2)("-B: names relative to the base path on create; where the files are on verify and repair", async () => {
    const original = seededBytes(40_000, 53);
    for (const tool of ["stock", "ours"]) {
      mkdirSync(join(dir, tool, "data", "sub"), { recursive: true });
      mkdirSync(join(dir, tool, "parity"));
      writeFileSync(join(dir, tool, "data", "sub", "a.mkv"), original);
      writeFileSync(join(dir, tool, "outside.bin"), seededBytes(100, 54));
    }
    const createArgs = ["-B", "data", "-s4000", "-c4", "parity/set.par2", "data/sub/a.mkv", "outside.bin"];
    expect(par2(["create", "-q", ...createArgs], join(dir, "stock")).exitCode).toBe(0);
    const created = await blaine(["par2", "create", ...createArgs, "--json"], { cwd: join(dir, "ours") });
    expect(created.exitCode).toBe(0);
    // As par2cmdline: a file outside the base path is left out, with a message.
    expect(created.stderr).toContain("Ignoring out of basepath source file");
    expect(setLayout(join(dir, "ours", "parity"))).toEqual(setLayout(join(dir, "stock", "parity")));
    const verified = await blaine(["par2", "verify", "-B", "data", "parity/set.par2", "--json"], { cwd: join(dir, "stock") });
    expect(verified.exitCode).toBe(0);
    expect(verified.json.files.map((f: { name: string }) => f.name)).toEqual(["sub/a.mkv"]);
    // Without -B the names are looked for beside the set: missing.
    expect((await blaine(["par2", "verify", "parity/set.par2"], { cwd: join(dir, "stock") })).exitCode).toBe(2);

    // Damage in each tree, repaired by the other tool with -B.
    for (const tool of ["stock", "ours"]) damage(join(dir, tool, "data", "sub", "a.mkv"), 1000, new Uint8Array(3000));
    expect((await blaine(["par2", "repair", "-B", "data", "parity/set.par2"], { cwd: join(dir, "stock") })).exitCode).toBe(0);
    expect(par2(["repair", "-q", "-B", "data", "parity/set.par2"], join(dir, "ours")).exitCode).toBe(0);
    for (const tool of ["stock", "ours"]) expect(Buffer.compare(readFileSync(join(dir, tool, "data", "sub", "a.mkv")), original)).toBe(0);
  });

  test.skipIf(!hasPar2)("-p purges the set after a successful repair, as par2cmdline does; -- ends the options", async () => {
    const original = seededBytes(20_000, 55);
    writeFileSync(join(dir, "-odd.bin"), original);
    expect((await blaine(["par2", "create", "-c", "3", "--", "set.par2", "-odd.bin"], { cwd: dir })).exitCode).toBe(0);
    expect(par2(["verify", "-q", "--", "set.par2", "-odd.bin"], dir).exitCode).toBe(0);
    damage(join(dir, "-odd.bin"), 0, new Uint8Array(100));
    expect((await blaine(["par2", "repair", "-p", "set.par2"], { cwd: dir })).exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, "-odd.bin")), original)).toBe(0);
    expect(setLayout(dir)).toEqual([]);
  });

  test("-q keeps only the conclusions, -qq says nothing, -v names the damaged blocks; -N, -S accepted on verify", async () => {
    writeFileSync(join(dir, "f.bin"), seededBytes(50_000, 56));
    const quietCreate = await blaine(["par2", "create", "-qq", "-s", "1000", "-c", "5", "set.par2", "f.bin"], { cwd: dir });
    expect(quietCreate.exitCode).toBe(0);
    expect(quietCreate.stdout).toBe("");
    expect(existsSync(join(dir, "set.par2"))).toBe(true);
    damage(join(dir, "f.bin"), 2000, new Uint8Array(10));
    const normal = await blaine(["par2", "verify", "set.par2"], { cwd: dir });
    expect(normal.stdout).toContain("You have 5 recovery blocks available.");
    const quiet = await blaine(["par2", "verify", "-q", "-N", "-S", "32", "set.par2"], { cwd: dir });
    expect(quiet.exitCode).toBe(1);
    expect(quiet.stdout).not.toContain("recovery blocks available");
    expect(quiet.stdout).toContain("Repair is possible.");
    const verbose = await blaine(["par2", "verify", "-v", "set.par2"], { cwd: dir });
    expect(verbose.stdout).toContain("damaged blocks: 2");
    const silent = await blaine(["par2", "verify", "-qq", "set.par2"], { cwd: dir });
    expect({ exitCode: silent.exitCode, stdout: silent.stdout }).toEqual({ exitCode: 1, stdout: "" });
  });

  test.skipIf(!hasPar2)("a set name without .par2 gets it, as with par2cmdline", async () => {
    writeFileSync(join(dir, "f.bin"), seededBytes(5000, 57));
    cpSync(join(dir, "f.bin"), join(dir, "g.bin"));
    expect((await blaine(["par2", "create", "-c1", "s.txt", "f.bin"], { cwd: dir })).exitCode).toBe(0);
    expect(par2(["create", "-q", "-q", "-c1", "t.txt", "g.bin"], dir).exitCode).toBe(0);
    expect(setLayout(dir)).toEqual(["s.txt.par2", "s.txt.vol0+1.par2", "t.txt.par2", "t.txt.vol0+1.par2"]);
  });
});

describe("issue 13.4: progress on a terminal", () => {
  const BIN = join(import.meta.dir, "..", "bin", "blaine.ts");
  /** `blaine par2 ARGS` with stderr on a terminal (script's pty) and stdout to a file: what the terminal showed, and stdout. */
  async function onTerminal(args: string): Promise<{ exitCode: number; terminal: string; stdout: string }> {
    const child = Bun.spawn(["script", "-qfec", `bun ${BIN} par2 ${args} > out.txt`, "/dev/null"], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const [terminal, exitCode] = await Promise.all([new Response(child.stdout).text(), child.exited]);
    return { exitCode, terminal, stdout: readFileSync(join(dir, "out.txt"), "utf8") };
  }
  const percents = (terminal: string) => [...terminal.matchAll(/Processing: (\d+\.\d)%/g)].map((match) => Number(match[1]));

  test.skipIf(!Bun.which("script"))("create and repair draw par2cmdline's Processing: N.N% as bytes go through the products, on stderr only, none with -q", async () => {
    writeFileSync(join(dir, "big.bin"), seededBytes(48 * 1024 * 1024, 61));
    const created = await onTerminal("create -c300 set.par2 big.bin");
    expect(created.exitCode).toBe(0);
    // Redrawn as the work goes (not one frozen figure): rising, with values between the ends.
    const made = percents(created.terminal);
    expect(made.some((percent) => percent > 0 && percent < 100)).toBe(true);
    expect(made).toEqual([...made].sort((a, b) => a - b));
    // Whole, though script's terminal has no width (0 columns).
    expect(created.terminal).toMatch(/Processing: \d+\.\d% \([\d.]+ [KMG]?i?B of 48\.0 MiB\)/);
    expect(created.stdout).toContain("Recovery block count: 300");
    expect(created.stdout).not.toContain("Processing");

    damage(join(dir, "big.bin"), 1_000_000, new Uint8Array(5_000_000));
    const repaired = await onTerminal("repair set.par2");
    expect(repaired.exitCode).toBe(0);
    const rebuilt = percents(repaired.terminal);
    expect(rebuilt.some((percent) => percent > 0 && percent < 100)).toBe(true);
    expect(rebuilt).toEqual([...rebuilt].sort((a, b) => a - b));
    expect(repaired.stdout).toContain("Repair complete.");

    const quiet = await onTerminal("create -q -c10 quiet.par2 big.bin");
    expect(quiet.exitCode).toBe(0);
    expect(quiet.terminal).not.toContain("Processing");
  });

  test.skipIf(!Bun.which("script"))("verify draws par2cmdline's Scanning: N.N% as it reads the files at their places, on stderr only, none with -q", async () => {
    // 400 MiB (a sparse file: MD5 and CRC take as long on zeros), so the scan outlasts a few redraws.
    const big = join(dir, "big.bin");
    writeFileSync(big, "");
    truncateSync(big, 400 * 1024 * 1024);
    expect((await blaine(["par2", "create", "-q", "-c1", "set.par2", "big.bin"], { cwd: dir })).exitCode).toBe(0);
    const verified = await onTerminal("verify set.par2");
    expect(verified.exitCode).toBe(0);
    const scanned = [...verified.terminal.matchAll(/Scanning: (\d+\.\d)% \([\d.]+ [KMG]?i?B of 400\.0 MiB\)/g)].map((match) => Number(match[1]));
    expect(scanned.some((percent) => percent > 0 && percent < 100)).toBe(true);
    expect(scanned).toEqual([...scanned].sort((a, b) => a - b));
    expect(verified.stdout).toContain("All files are correct, repair is not required.");
    expect(verified.stdout).not.toContain("Scanning");
    const quiet = await onTerminal("verify -q set.par2");
    expect(quiet.exitCode).toBe(0);
    expect(quiet.terminal).not.toContain("Scanning");
  });
});
