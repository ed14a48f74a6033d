/**
 * The PAR2 engine in-process: field arithmetic, the two kernels (identical
 * bytes, and equal to a word-by-word reference), sizing limits, packets,
 * and repair of damage by the built-in solver.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { closeSync, openSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { gfDivide, gfInvertMatrix, gfInvertPowerMatrix, gfMultiply, inputConstantLogs, recoveryCoefficient, writeNibbleTables } from "../lib/par2/gf16.ts";
import { createKernel, type KernelName } from "../lib/par2/kernel.ts";
import { createSimdKernel, simdSupported } from "../lib/par2/kernel-simd.ts";
import { SliceAccumulator } from "../lib/par2/slice-accumulator.ts";
import { multiplySlices } from "../lib/par2/slice-multiply.ts";
import { createRecoverySet } from "../lib/par2/create.ts";
import { verifyRecoverySet } from "../lib/par2/verify.ts";
import { repairChecked, repairRecoverySet } from "../lib/par2/repair.ts";
import { chooseSliceSize, MAX_INPUT_SLICES, recoveryCountFor, recoveryFileSizes, sliceCountFor, volumeNames } from "../lib/par2/sizing.ts";
import { scanPacketFile, PacketType, equalBytes } from "../lib/par2/packets.ts";
import { ProgressLine } from "../lib/archive/run/progress.ts";
import { RunReport } from "../lib/archive/run/report.ts";
import { waitFor } from "./helpers/cli.ts";
import { seededBytes, tempDir } from "./helpers/fixture.ts";

/** Word-by-word reference: Σ c(o,k)·word, with the log tables only. */
function referenceProducts(inputs: Uint8Array[], sliceSize: number, outputs: number, coefficient: (o: number, k: number) => number): Uint8Array[] {
  return Array.from({ length: outputs }, (_, o) => {
    const out = new Uint8Array(sliceSize);
    inputs.forEach((input, k) => {
      const padded = new Uint8Array(sliceSize);
      padded.set(input.subarray(0, sliceSize));
      const c = coefficient(o, k);
      for (let w = 0; w < sliceSize; w += 2) {
        const product = gfMultiply(padded[w] | (padded[w + 1] << 8), c);
        out[w] ^= product & 0xff;
        out[w + 1] ^= product >>> 8;
      }
    });
    return out;
  });
}

describe("GF(2^16)", () => {
  test("multiplication is invertible and 2 generates the field", () => {
    for (const [a, b] of [[1, 1], [2, 0x8000], [0x1234, 0xfedc], [65535, 65535], [7, 3]]) {
      const product = gfMultiply(a, b);
      expect(gfDivide(product, b)).toBe(a);
      expect(gfMultiply(b, a)).toBe(product);
    }
    // x^16 = x^12 + x^3 + x + 1 under the polynomial 0x1100B.
    expect(gfMultiply(0x8000, 2)).toBe(0x100b);
    expect(gfMultiply(0, 1234)).toBe(0);
  });

  test("input-slice constants: logs coprime to 65535, the first ones as in the spec, 32768 in all", () => {
    expect([...inputConstantLogs(10)]).toEqual([1, 2, 4, 7, 8, 11, 13, 14, 16, 19]);
    const all = inputConstantLogs(MAX_INPUT_SLICES);
    expect(all.length).toBe(32768);
    expect(() => inputConstantLogs(MAX_INPUT_SLICES + 1)).toThrow(/32768/);
  });

  test("matrix inverse times matrix is the identity", () => {
    const n = 6;
    const logs = inputConstantLogs(n);
    const matrix = new Uint16Array(n * n);
    for (let r = 0; r < n; r++) for (let j = 0; j < n; j++) matrix[r * n + j] = recoveryCoefficient(logs[j], r + 3);
    const inverse = gfInvertMatrix(matrix, n)!;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let k = 0; k < n; k++) sum ^= gfMultiply(inverse[i * n + k], matrix[k * n + j]);
        expect(sum).toBe(i === j ? 1 : 0);
      }
    }
    expect(gfInvertMatrix(new Uint16Array([1, 2, 1, 2]), 2)).toBeUndefined();
  });

  test("the closed-form inverse of consecutive exponents' matrix equals elimination's, for any lost slices", () => {
    const logs = inputConstantLogs(3000);
    for (const [n, firstExponent] of [[1, 0], [2, 5], [17, 0], [64, 1], [200, 65000]]) {
      const lost = Array.from({ length: n }, (_, j) => (j * 131 + n) % 3000);
      const matrix = new Uint16Array(n * n);
      for (let r = 0; r < n; r++) for (let j = 0; j < n; j++) matrix[r * n + j] = recoveryCoefficient(logs[lost[j]], firstExponent + r);
      expect(gfInvertPowerMatrix(lost.map((index) => logs[index]), firstExponent)).toEqual(gfInvertMatrix(matrix, n)!);
    }
  });
});

describe("kernels", () => {
  const kernels: KernelName[] = simdSupported() ? ["simd", "plain"] : ["plain"];
  if (!simdSupported()) console.log("skipped SIMD kernel checks: this runtime has no WebAssembly SIMD");

  test.each(kernels)("%s kernel equals the word-by-word reference", (name) => {
    const sliceSize = 4096 + 64;
    const inputs = Array.from({ length: 20 }, (_, k) => seededBytes(sliceSize - (k === 19 ? 100 : 0), k + 1));
    const coefficient = (o: number, k: number) => (o * 7919 + k * 104729 + 1) & 0xffff;
    const accumulator = new SliceAccumulator(createKernel(name), { partOffset: 0, partLength: sliceSize, outputs: 3, batchCapacity: 16 });
    for (let start = 0; start < inputs.length; start += 16) {
      const group = inputs.slice(start, start + 16);
      const coefficients = new Uint16Array(3 * group.length);
      for (let o = 0; o < 3; o++) group.forEach((_, k) => (coefficients[o * group.length + k] = coefficient(o, start + k)));
      accumulator.addBatch(group.map((bytes) => ({ bytes, offset: 0, length: bytes.length })), coefficients);
    }
    const result = accumulator.result();
    const expected = referenceProducts(inputs, sliceSize, 3, coefficient);
    for (let o = 0; o < 3; o++) expect(equalBytes(result.subarray(o * sliceSize, (o + 1) * sliceSize), expected[o])).toBe(true);
  });

  test.skipIf(!simdSupported())("the SIMD kernel's nibble tables, built in WebAssembly, equal gf16's for every coefficient", () => {
    const kernel = createSimdKernel();
    const coefficients = Uint16Array.from({ length: 65536 }, (_, c) => c);
    kernel.reserve(coefficients.length * kernel.tableBytes);
    kernel.writeTables(coefficients, 0);
    const expected = new Uint8Array(coefficients.length * kernel.tableBytes);
    coefficients.forEach((c) => writeNibbleTables(c, expected, c * kernel.tableBytes));
    expect(equalBytes(kernel.bytes().subarray(0, expected.length), expected)).toBe(true);
  });

  test.skipIf(!simdSupported())("relaxed and strict swizzle builds of the SIMD kernel give identical bytes", () => {
    const sliceSize = 8192;
    const inputs = Array.from({ length: 5 }, (_, k) => seededBytes(sliceSize, 50 + k));
    const run = (kernel: ReturnType<typeof createKernel>) => {
      const accumulator = new SliceAccumulator(kernel, { partOffset: 0, partLength: sliceSize, outputs: 2, batchCapacity: 5 });
      accumulator.addBatch(inputs.map((bytes) => ({ bytes, offset: 0, length: sliceSize })), Uint16Array.from({ length: 10 }, (_, i) => (i * 40503 + 7) & 0xffff));
      return accumulator.result();
    };
    expect(equalBytes(run(createSimdKernel()), run(createSimdKernel({ swizzle: "strict" })))).toBe(true);
  });

  test.skipIf(!simdSupported())("SIMD and plain kernels give identical recovery slices, in threads, in-process and shared between this thread and a worker", async () => {
    const sliceSize = 10_000; // not a multiple of 32: the padded tail must not leak
    const data = seededBytes(sliceSize * 37 + 123, 99);
    const inputs = Array.from({ length: 38 }, (_, i) => ({ bytes: data, offset: i * sliceSize, length: Math.min(sliceSize, data.length - i * sliceSize) }));
    const logs = inputConstantLogs(38);
    const run = (kernel: KernelName, threads?: number, shareCallingThread?: boolean, memory?: number) =>
      multiplySlices({ sliceSize, outputCount: 5, inputs, coefficient: (o, k) => recoveryCoefficient(logs[k], o + 1), kernel, threads, shareCallingThread, memory });
    const simd = await run("simd");
    const plain = await run("plain");
    const simdThreads = await run("simd", 2);
    const plainThreads = await run("plain", 2);
    const simdShared = await run("simd", 2, true);
    // Shared memory: several batches (each made ready while the threads compute the one before) and ranges; ranges of
    // several units' chunks.
    const sharedBatches = await run("simd", 2, true, 64_000);
    const sharedChunks = await run("simd", 2, true, 600_000);
    for (let o = 0; o < 5; o++) {
      expect(equalBytes(simd[o], plain[o])).toBe(true);
      expect(equalBytes(simd[o], simdThreads[o])).toBe(true);
      expect(equalBytes(simd[o], plainThreads[o])).toBe(true);
      expect(equalBytes(simd[o], simdShared[o])).toBe(true);
      expect(equalBytes(simd[o], sharedBatches[o])).toBe(true);
      expect(equalBytes(simd[o], sharedChunks[o])).toBe(true);
    }
    // A source that cannot be read fails the shared pass (its workers stopped, not left waiting), and the next pass works.
    const unreadable = [...inputs.slice(0, 20), { path: join(tmpdir(), "blaine-no-such-slice-source"), offset: 0, length: sliceSize }, ...inputs.slice(20)];
    await expect(
      multiplySlices({ sliceSize, outputCount: 5, inputs: unreadable, coefficient: () => 1, kernel: "simd", threads: 2, shareCallingThread: true, memory: 64_000 }),
    ).rejects.toThrow(/ENOENT|no such file/i);
    const again = await run("simd", 2, true, 64_000);
    for (let o = 0; o < 5; o++) expect(equalBytes(simd[o], again[o])).toBe(true);
    const reference = referenceProducts(inputs.map((i) => data.subarray(i.offset, i.offset + i.length)), sliceSize, 5, (o, k) => recoveryCoefficient(logs[k], o + 1));
    for (let o = 0; o < 5; o++) expect(equalBytes(simd[o], reference[o])).toBe(true);
  }, 30_000);
});

describe("ranges", () => {
  test("outputs beyond the memory budget come range by range, each handed over as it is done, with the same bytes", async () => {
    const sliceSize = 4096;
    const data = seededBytes(sliceSize * 12, 77);
    const inputs = Array.from({ length: 12 }, (_, i) => ({ bytes: data, offset: i * sliceSize, length: sliceSize }));
    const logs = inputConstantLogs(12);
    const coefficient = (o: number, k: number) => recoveryCoefficient(logs[k], o);
    const whole = await multiplySlices({ sliceSize, outputCount: 7, inputs, coefficient });
    for (const threads of [undefined, 2]) {
      const starts: number[] = [];
      const streamed = Array.from({ length: 7 }, () => new Uint8Array(sliceSize));
      let progress = 0;
      // 7 outputs × 1 KiB ranges × 4 (held twice, plus inputs and tables) → ranges of 1 KiB.
      const returned = await multiplySlices({
        sliceSize, outputCount: 7, inputs, coefficient, threads, memory: 7 * 1024 * 4,
        onProgress: (bytes) => (progress += bytes),
        onRange: (start, outputs) => {
          starts.push(start);
          outputs.forEach((bytes, o) => streamed[o].set(bytes, start));
        },
      });
      expect(returned).toEqual([]);
      expect(starts.length).toBeGreaterThanOrEqual(4);
      expect(starts).toEqual([...starts].sort((a, b) => a - b));
      expect(progress).toBe(data.length);
      for (let o = 0; o < 7; o++) expect(equalBytes(streamed[o], whole[o])).toBe(true);
    }
  });
});

describe("many outputs from little input", () => {
  test("grouped outputs come whole, a group at a time, with the same bytes; progress counts each input byte once", async () => {
    // One 4 KiB input, 600 outputs, 1 MiB of memory: ungrouped, ranges of a few hundred bytes (a piece of every
    // output per range: create's -b1 -rg1 made 16 366 × 2048 writes); grouped, each output in one piece per thread.
    const sliceSize = 4096;
    const data = seededBytes(sliceSize - 100, 78);
    const inputs = [{ bytes: data, offset: 0, length: data.length }];
    const coefficient = (o: number, k: number) => recoveryCoefficient(inputConstantLogs(1)[k], o);
    const whole = await multiplySlices({ sliceSize, outputCount: 600, inputs, coefficient });
    for (const { threads, shareCallingThread } of [{ threads: undefined, shareCallingThread: false }, { threads: 2, shareCallingThread: false }, { threads: 2, shareCallingThread: true }]) {
      const streamed = Array.from({ length: 600 }, () => new Uint8Array(sliceSize));
      const pieces = new Array<number>(600).fill(0);
      const firsts: number[] = [];
      let progress = 0;
      await multiplySlices({
        sliceSize, outputCount: 600, inputs, coefficient, threads, shareCallingThread, memory: 1024 * 1024, groupOutputs: true,
        onProgress: (bytes) => (progress += bytes),
        onRange: (start, outputs, first) => {
          if (firsts.at(-1) !== first) firsts.push(first);
          outputs.forEach((bytes, i) => {
            streamed[first + i].set(bytes, start);
            pieces[first + i]++;
          });
        },
      });
      const parts = threads === 2 && !shareCallingThread ? 2 : 1;
      expect({ threads, shareCallingThread, most: Math.max(...pieces), least: Math.min(...pieces) }).toEqual({ threads, shareCallingThread, most: parts, least: parts });
      expect(firsts.length).toBeGreaterThan(1);
      expect(firsts).toEqual([...firsts].sort((a, b) => a - b));
      expect(progress).toBe(data.length);
      for (let o = 0; o < 600; o++) expect(equalBytes(streamed[o], whole[o])).toBe(true);
    }
  });

  test("a usual create's outputs are not grouped: its inputs would be read again for each group", async () => {
    const sliceSize = 4096;
    const data = seededBytes(sliceSize * 40, 79);
    const inputs = Array.from({ length: 40 }, (_, i) => ({ bytes: data, offset: i * sliceSize, length: sliceSize }));
    const logs = inputConstantLogs(40);
    const firsts = new Set<number>();
    await multiplySlices({
      sliceSize, outputCount: 8, inputs, coefficient: (o, k) => recoveryCoefficient(logs[k], o), memory: 64 * 1024, groupOutputs: true,
      onRange: (_, __, first) => void firsts.add(first),
    });
    expect([...firsts]).toEqual([0]);
  });
});

describe("issue 13.4: parity progress", () => {
  test("bytes through the encoder are reported as they go, each once, and the progress line shows them", async () => {
    const { path: dir, cleanup } = tempDir("blaine-par2-progress-");
    try {
      writeFileSync(join(dir, "film.mkv"), seededBytes(3_000_000, 5));
      const calls: number[] = [];
      // 1 MiB of memory for 30 recovery slices of 30 000 bytes: several ranges, each read through once.
      await createRecoverySet(join(dir, "s.par2"), {
        files: [{ path: join(dir, "film.mkv"), name: "film.mkv" }], sliceSize: 30_000, recoveryCount: 30, memory: 1024 * 1024, threads: 2,
        onProgress: (bytes) => calls.push(bytes),
      });
      expect(calls.length).toBeGreaterThan(4);
      expect(calls.reduce((a, b) => a + b, 0)).toBe(3_000_000);
    } finally {
      cleanup();
    }
    const report = new RunReport();
    report.planned(3_000_000);
    report.done(3_000_000);
    report.parityPlanned(3_000_000);
    report.parityDone(1_000_000);
    let written = "";
    const terminal = { isTTY: true, columns: 200, write: (text: string) => ((written += text), true) } as unknown as NodeJS.WriteStream;
    const line = new ProgressLine(report, terminal).start();
    try {
      await waitFor(() => written.includes("parity"), 5000, "the progress line");
    } finally {
      line.stop();
    }
    expect(written).toMatch(/copied, parity 97[67]\.\d KiB\/2\.86 MiB/);
  });
});

describe("sizing", () => {
  test("slice size: multiple of 4, within the block count, at most 32768 slices, small files get small slices", () => {
    const sizes = [1_000_003, 5000, 1];
    const size = chooseSliceSize(sizes);
    expect(size % 4).toBe(0);
    expect(sliceCountFor(sizes, size)).toBeLessThanOrEqual(2000);
    expect(chooseSliceSize([10])).toBe(12); // one slice, 2 bytes of padding
    expect(chooseSliceSize([10_000])).toBe(1024);
    const huge = [2 ** 40];
    expect(sliceCountFor(huge, chooseSliceSize(huge, { blockCount: 32768 }))).toBeLessThanOrEqual(32768);
    expect(() => chooseSliceSize([1_000_000], { sliceSize: 4 })).toThrow(/32768/);
    expect(() => chooseSliceSize([100], { sliceSize: 6 })).toThrow(/multiple of 4/);
    expect(() => chooseSliceSize([100], { blockCount: 40000 })).toThrow(/32768/);
    expect(() => chooseSliceSize(Array(32769).fill(1))).toThrow(/32768/);
  });

  test("recovery counts and vol files follow par2cmdline", () => {
    expect(recoveryCountFor(1000, 10)).toBe(100);
    expect(recoveryCountFor(3, 10)).toBe(1);
    expect(recoveryCountFor(3, 0)).toBe(0);
    expect(recoveryCountFor(40000, 200)).toBe(65535);
    // The layouts par2cmdline 0.8.1 writes for the same counts (par2-cli.test.ts compares with the real one).
    expect(recoveryFileSizes(7)).toEqual([1, 2, 4]);
    expect(recoveryFileSizes(25)).toEqual([1, 2, 4, 8, 10]);
    expect(recoveryFileSizes(25, { fileCount: 3 })).toEqual([4, 8, 13]);
    expect(recoveryFileSizes(25, { scheme: "uniform", fileCount: 3 })).toEqual([9, 8, 8]);
    expect(recoveryFileSizes(25, { scheme: "uniform" })).toEqual([5, 5, 5, 5, 5]);
    expect(recoveryFileSizes(3, { fileCount: 3 })).toEqual([1, 2, 0]);
    expect(recoveryFileSizes(40, { scheme: "limited", largestFileSlices: 7 })).toEqual([1, 2, 4, 5, 7, 7, 7, 7]);
    expect(recoveryFileSizes(0)).toEqual([]);
    expect(() => recoveryFileSizes(3, { fileCount: 4 })).toThrow(/more files than blocks/);
    expect(volumeNames("set", 0, [1, 2, 4])).toEqual(["set.vol0+1.par2", "set.vol1+2.par2", "set.vol3+4.par2"]);
    expect(volumeNames("set", 95, [1, 2, 4, 2])).toEqual(["set.vol095+1.par2", "set.vol096+2.par2", "set.vol098+4.par2", "set.vol102+2.par2"]);
  });
});

describe("create, verify, repair in-process", () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ path: dir, cleanup } = tempDir("blaine-par2-")));
  afterEach(() => cleanup());

  async function makeSet(files: Record<string, Uint8Array>, options: { sliceSize?: number; recoveryCount?: number } = {}) {
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    return createRecoverySet(join(dir, "set.par2"), { files: Object.keys(files).map((name) => ({ path: join(dir, name), name })), redundancy: 10, ...options });
  }

  test("packets: each file of the set parses, with one main, descriptions, checksums and the recovery slices", async () => {
    const built = await makeSet({ "a.bin": seededBytes(50_000, 1), "b.bin": seededBytes(7, 2) }, { sliceSize: 1024, recoveryCount: 6 });
    const index = scanPacketFile(join(dir, "set.par2"));
    const types = index.map((p) => new TextDecoder().decode(p.type).replace(/\0+$/, ""));
    expect(types.filter((t) => t.endsWith("Main")).length).toBe(1);
    expect(types.filter((t) => t.endsWith("FileDesc")).length).toBe(2);
    expect(types.filter((t) => t.endsWith("IFSC")).length).toBe(2);
    expect(index.every((p) => equalBytes(p.setId, built.setId))).toBe(true);
    const recovery = built.paths.slice(1).flatMap((path) => scanPacketFile(path)).filter((p) => equalBytes(p.type, PacketType.recoverySlice));
    expect(recovery.length).toBe(6);
  });

  test("flipped bytes, a zeroed range and truncation are repaired to the original bytes", async () => {
    const original = seededBytes(300_000, 3);
    await makeSet({ "film.mkv": original }, { sliceSize: 4096, recoveryCount: 12 });
    const path = join(dir, "film.mkv");
    const fd = openSync(path, "r+");
    writeSync(fd, new Uint8Array([original[10] ^ 0xff]), 0, 1, 10);
    writeSync(fd, new Uint8Array(9000), 0, 9000, 100_000);
    closeSync(fd);
    truncateSync(path, 290_000);
    const check = await verifyRecoverySet(join(dir, "set.par2"));
    expect(check.files[0].status).toBe("damaged");
    expect(check.badSlices).toBe(1 + 3 + 4); // one flip; 9000 zeroed bytes over slices 24-26; the cut at 290000 falls in slice 70 of 0-73
    const result = await repairRecoverySet(join(dir, "set.par2"));
    expect(result.failure).toBeUndefined();
    expect(equalBytes(readFileSync(path), original)).toBe(true);
    expect((await verifyRecoverySet(join(dir, "set.par2"))).files[0].status).toBe("intact");
  });

  test("a file of 64 MiB and more has its slices hashed on another thread: holes, the short last slice and repair come out right, and par2cmdline agrees", async () => {
    const path = join(dir, "big.bin");
    const length = 64 * 1024 * 1024 + 1000;
    const fd = openSync(path, "w");
    try {
      // Data, a hole of whole slices, data to a short last slice.
      writeSync(fd, seededBytes(3 * 1024 * 1024, 11), 0, 3 * 1024 * 1024, 0);
      writeSync(fd, seededBytes(8 * 1024 * 1024 + 1000, 12), 0, 8 * 1024 * 1024 + 1000, length - (8 * 1024 * 1024 + 1000));
    } finally {
      closeSync(fd);
    }
    const original = readFileSync(path);
    // Slices longer than the worker's 1 MiB pieces.
    await createRecoverySet(join(dir, "set.par2"), { files: [{ path, name: "big.bin" }], sliceSize: 3 * 1024 * 1024 + 4, recoveryCount: 4 });
    expect((await verifyRecoverySet(join(dir, "set.par2"))).files[0].status).toBe("intact");
    if (Bun.which("par2")) expect(Bun.spawnSync(["par2", "verify", "-q", "-q", join(dir, "set.par2")]).exitCode).toBe(0);
    const damaged = openSync(path, "r+");
    writeSync(damaged, new Uint8Array(300_000).fill(7), 0, 300_000, length - 200_000);
    closeSync(damaged);
    const result = await repairRecoverySet(join(dir, "set.par2"));
    expect(result.failure).toBeUndefined();
    expect(equalBytes(readFileSync(path), original)).toBe(true);
  }, 60_000);

  test("slices longer than a read (1 MiB, as 2000 slices of a file over 2 GB): verified, searched for and copied piece by piece", async () => {
    const original = seededBytes(7 * 1024 * 1024 + 1000, 21);
    const sliceSize = 1.5 * 1024 * 1024 + 4;
    await makeSet({ "film.mkv": original }, { sliceSize, recoveryCount: 4 });
    const path = join(dir, "film.mkv");
    const setPath = join(dir, "set.par2");
    // The short last slice counts zero-padded to the slice size.
    expect((await verifyRecoverySet(setPath)).files[0].status).toBe("intact");

    // The file found under another name behind 1.3 MB of other bytes: the window rolls past a read's end before the first slice.
    const junk = 1_300_001;
    writeFileSync(join(dir, "moved.bin"), Buffer.concat([seededBytes(junk, 22), original]));
    rmSync(path);
    const found = await verifyRecoverySet(setPath, { extraFiles: [join(dir, "moved.bin")] });
    expect(found.files[0].status).toBe("missing");
    expect(found.found.map((slice) => [slice.index, slice.offset]).sort((a, b) => a[0] - b[0])).toEqual([0, 1, 2, 3, 4].map((k) => [k, junk + k * sliceSize]));
    expect(found.badSlices).toBe(0);
    expect((await repairChecked(found)).failure).toBeUndefined();
    expect(equalBytes(readFileSync(path), original)).toBe(true);

    // A flipped byte in the second slice and the file cut within its last: those two slices, each hashed in pieces.
    const fd = openSync(path, "r+");
    writeSync(fd, new Uint8Array([original[sliceSize + 1_100_000] ^ 1]), 0, 1, sliceSize + 1_100_000);
    closeSync(fd);
    truncateSync(path, original.length - 500);
    const check = await verifyRecoverySet(setPath);
    expect(check.files[0].badSlices).toEqual([1, 4]);
    const result = await repairRecoverySet(setPath);
    expect(result.failure).toBeUndefined();
    expect(equalBytes(readFileSync(path), original)).toBe(true);
  }, 60_000);

  test("600 of 2000 slices missing (too many to fold the inverse into the coefficients): repaired through the syndromes", async () => {
    const original = seededBytes(8000, 7);
    await makeSet({ "tiny.bin": original }, { sliceSize: 4, recoveryCount: 620 });
    const damaged = Uint8Array.from(original);
    damaged.fill(0, 4000, 6400);
    writeFileSync(join(dir, "tiny.bin"), damaged);
    const result = await repairRecoverySet(join(dir, "set.par2"));
    expect(result.before.badSlices).toBe(600);
    expect(result.failure).toBeUndefined();
    expect(equalBytes(readFileSync(join(dir, "tiny.bin")), original)).toBe(true);
  }, 60_000);

  test("the syndrome path with this thread sharing the products and ranges handed over while it computes: each multiplication has its own kernel memory", async () => {
    const original = seededBytes(512_000, 8);
    await makeSet({ "shared.bin": original }, { sliceSize: 256, recoveryCount: 620 });
    const damaged = Uint8Array.from(original);
    damaged.fill(0, 400 * 256, 1000 * 256);
    writeFileSync(join(dir, "shared.bin"), damaged);
    // A small budget makes several ranges, so a range is handed over (and its syndromes multiplied here) while this thread computes its part of the next.
    const result = await repairRecoverySet(join(dir, "set.par2"), { threads: 2, shareCallingThread: true, memory: 250_000 });
    expect(result.before.badSlices).toBe(600);
    expect(result.failure).toBeUndefined();
    expect(equalBytes(readFileSync(join(dir, "shared.bin")), original)).toBe(true);
  }, 60_000);

  test("a missing file and a damaged vol file: repaired from what is left", async () => {
    const files = { "a.bin": seededBytes(20_000, 4), "b.bin": seededBytes(3000, 5) };
    const built = await makeSet(files, { sliceSize: 1000, recoveryCount: 10 });
    rmSync(join(dir, "b.bin"));
    const firstVol = built.paths[1]; // holds exponent 0
    const bytes = readFileSync(firstVol);
    bytes[100] ^= 1;
    writeFileSync(firstVol, bytes);
    const check = await verifyRecoverySet(join(dir, "set.par2"));
    expect(check.files.map((f) => f.status)).toEqual(expect.arrayContaining(["missing", "intact"]));
    expect(check.set.recoveryDamaged).toBe(1);
    expect(check.recoveryAvailable).toBe(9);
    const result = await repairRecoverySet(join(dir, "set.par2"));
    expect(result.failure).toBeUndefined();
    expect(equalBytes(readFileSync(join(dir, "b.bin")), files["b.bin"])).toBe(true);
  });

  test("more damage than recovery: nothing is written and the shortfall is named", async () => {
    const original = seededBytes(10_000, 6);
    await makeSet({ "x.bin": original }, { sliceSize: 1000, recoveryCount: 2 });
    const damaged = Uint8Array.from(original);
    damaged.fill(0, 0, 3000);
    writeFileSync(join(dir, "x.bin"), damaged);
    const result = await repairRecoverySet(join(dir, "set.par2"));
    expect(result.failure).toMatch(/3 slices are damaged but only 2 recovery slices/);
    expect(equalBytes(readFileSync(join(dir, "x.bin")), damaged)).toBe(true);
  });

  test("an existing set is not overwritten unless asked; a failed create leaves no files", async () => {
    await makeSet({ "a.bin": seededBytes(5000, 8) });
    const before = readdirSync(dir).sort();
    await expect(createRecoverySet(join(dir, "set.par2"), { files: [{ path: join(dir, "a.bin"), name: "a.bin" }] })).rejects.toThrow(/already exists/);
    await expect(createRecoverySet(join(dir, "other.par2"), { files: [{ path: join(dir, "a.bin"), name: "a.bin" }], recoveryCount: 70000 })).rejects.toThrow(/65535/);
    expect(readdirSync(dir).sort()).toEqual(before);
    const replaced = await createRecoverySet(join(dir, "set.par2"), { files: [{ path: join(dir, "a.bin"), name: "a.bin" }], replace: true, recoveryCount: 3 });
    expect(replaced.recoveryCount).toBe(3);
  });

  test("an empty file needs no parity and is left out of the set", async () => {
    const built = await makeSet({ "empty": new Uint8Array(0), "data": seededBytes(100, 7) });
    expect(built.skippedEmpty).toEqual(["empty"]);
    expect(built.inputSlices).toBe(1);
    await expect(createRecoverySet(join(dir, "empty.par2"), { files: [{ path: join(dir, "empty"), name: "empty" }] })).rejects.toThrow(/empty/);
  });
});
