import { describe, expect, test } from "bun:test";
import type { MountedDisk } from "../../lib/archive/disk/mounted-disk.ts";
import { catalogBytesPerFile, SpaceBudget, type SpaceBudgetOptions } from "../../lib/archive/disk/space-budget.ts";

/**
 * The space budget on its own: each disk a small fake whose statfs answer
 * the test sets (what the file system would say as copies land), so every
 * decision is checked to the byte.
 */
const BLOCK = 4096;
const KiB = 1024;
const MiB = 1024 * KiB;
/** What one file's catalog rows take, for paths of 0 bytes (the default). */
const CATALOG = catalogBytesPerFile(0);

function fakeDisk(name: string, free: number, total = free) {
  const statfs = { free, total, blockSize: BLOCK };
  const disk = { name, fileSystemSpace: () => ({ ...statfs }) } as unknown as MountedDisk;
  return { disk, statfs };
}

function options(fields: Partial<SpaceBudgetOptions> = {}): SpaceBudgetOptions {
  return { reserve: 0, capacity: null, usedAtStart: 0, ...fields };
}

/** Hooks that note which disk was found full or out of space, and where new data went next. */
function recorder() {
  const events: string[] = [];
  const name = (disk: MountedDisk | undefined) => (disk ? (disk as unknown as { name: string }).name : "none");
  return {
    events,
    hooks: {
      onFull: (full: MountedDisk, next: MountedDisk | undefined) => events.push(`full ${name(full)} → ${name(next)}`),
      onOutOfSpace: (disk: MountedDisk, next: MountedDisk | undefined) => events.push(`out of space ${name(disk)} → ${name(next)}`),
    },
  };
}

describe("space budget", () => {
  test("TestReserveKept: a file fits in the free space less the reserve and its catalog rows, in whole blocks; one block more does not", () => {
    const a = fakeDisk("A", 1 * MiB);
    const room = 1 * MiB - 512 * KiB - CATALOG;
    const largest = Math.floor(room / BLOCK) * BLOCK;
    expect(new SpaceBudget([{ disk: a.disk, options: options({ reserve: 512 * KiB }) }]).tryReserve(largest, { span: false })).toBeDefined();
    // One byte more takes one more block, past the reserve.
    expect(new SpaceBudget([{ disk: a.disk, options: options({ reserve: 512 * KiB }) }]).tryReserve(largest + 1, { span: false })).toBeUndefined();
  });

  test("TestInFlightCopies: copies reserved but not yet written count against the free space statfs still shows", () => {
    const a = fakeDisk("A", 1 * MiB);
    const budget = new SpaceBudget([{ disk: a.disk, options: options() }]);
    const first = budget.tryReserve(600 * KiB, { span: false });
    expect(first).toBeDefined();
    // statfs still says 1 MiB free: the first copy has written nothing yet.
    expect(budget.tryReserve(600 * KiB, { span: false })).toBeUndefined();
    expect(budget.available()).toBe(1 * MiB - 600 * KiB - CATALOG);
    // Abandoned: its room (catalog rows included) comes back.
    budget.release(first!, false);
    expect(budget.available()).toBe(1 * MiB);
    expect(budget.tryReserve(600 * KiB, { span: false })).toBeDefined();
  });

  test("TestWrittenCopyShowsInStatfs: a written copy is counted once, by statfs, its catalog rows until the run ends", () => {
    const a = fakeDisk("A", 1 * MiB);
    const budget = new SpaceBudget([{ disk: a.disk, options: options() }]);
    const copy = budget.tryReserve(400 * KiB)!;
    a.statfs.free -= 400 * KiB;
    budget.release(copy, true);
    expect(budget.available()).toBe(1 * MiB - 400 * KiB - CATALOG);
  });

  test("TestCapacity: a disk with a capacity takes no more data than it, counting what it held at the start and what is in flight", () => {
    const a = fakeDisk("A", 100 * MiB);
    const budget = new SpaceBudget([{ disk: a.disk, options: options({ capacity: 1000 * KiB, usedAtStart: 400 * KiB }) }]);
    expect(budget.tryReserve(600 * KiB + 1, { span: false })).toBeUndefined();
    expect(budget.tryReserve(300 * KiB, { span: false })).toBeDefined();
    expect(budget.tryReserve(300 * KiB + 1, { span: false })).toBeUndefined();
    expect(budget.tryReserve(300 * KiB, { span: false })).toBeDefined();
    expect(budget.available()).toBe(0);
  });

  test("TestSpanningToNextDisk: a file the current disk cannot take goes to the next disk, which stays current; the first is reported full once", () => {
    const a = fakeDisk("A", 1 * MiB);
    const b = fakeDisk("B", 10 * MiB);
    const { events, hooks } = recorder();
    const budget = new SpaceBudget([{ disk: a.disk, options: options() }, { disk: b.disk, options: options() }], hooks);
    expect(budget.tryReserve(800 * KiB)!.disk).toBe(a.disk);
    const spanned = budget.tryReserve(800 * KiB)!;
    expect(spanned.disk).toBe(b.disk);
    expect(budget.current).toBe(b.disk);
    expect(events).toEqual(["full A → B"]);
    // A small file that would still fit on A goes to B too: new data never goes back to a disk left behind.
    expect(budget.tryReserve(10 * KiB)!.disk).toBe(b.disk);
    expect(events).toEqual(["full A → B"]);
  });

  test("TestNoSpanWhenAsked: with span off, a file that does not fit is refused and the current disk stays", () => {
    const a = fakeDisk("A", 1 * MiB);
    const b = fakeDisk("B", 10 * MiB);
    const { events, hooks } = recorder();
    const budget = new SpaceBudget([{ disk: a.disk, options: options() }, { disk: b.disk, options: options() }], hooks);
    expect(budget.tryReserve(2 * MiB, { span: false })).toBeUndefined();
    expect(budget.current).toBe(a.disk);
    expect(events).toEqual([]);
  });

  test("TestLargerThanAnyDisk: a file no disk could hold even empty is refused without marking any disk full", () => {
    const a = fakeDisk("A", 1 * MiB);
    const b = fakeDisk("B", 2 * MiB);
    const { events, hooks } = recorder();
    const budget = new SpaceBudget([{ disk: a.disk, options: options() }, { disk: b.disk, options: options() }], hooks);
    expect(budget.largerThanAnyDisk(3 * MiB)).toBe(true);
    expect(budget.tryReserve(3 * MiB)).toBeUndefined();
    expect(budget.current).toBe(a.disk);
    expect(events).toEqual([]);
  });

  test("TestLastDiskFilledByTheRun: the last disk, filled by this run, is reported full with nowhere to go next", () => {
    const a = fakeDisk("A", 1 * MiB);
    const { events, hooks } = recorder();
    const budget = new SpaceBudget([{ disk: a.disk, options: options() }], hooks);
    const copy = budget.tryReserve(900 * KiB)!;
    a.statfs.free -= 900 * KiB;
    budget.release(copy, true);
    expect(budget.tryReserve(200 * KiB)).toBeUndefined();
    expect(events).toEqual(["full A → none"]);
    // Full now: nothing more starts on it, however small.
    expect(budget.tryReserve(1)).toBeUndefined();
    expect(budget.available()).toBe(0);
  });

  test("TestDiskFullBeforeTheRun: a disk found without room before the run stored anything is not reported full (something else filled it)", () => {
    const a = fakeDisk("A", 100 * KiB, 10 * MiB);
    const { events, hooks } = recorder();
    const budget = new SpaceBudget([{ disk: a.disk, options: options() }], hooks);
    expect(budget.tryReserve(200 * KiB)).toBeUndefined();
    expect(events).toEqual([]);
    // Space that comes back (freed from outside) is used.
    a.statfs.free = 1 * MiB;
    expect(budget.tryReserve(200 * KiB)).toBeDefined();
  });

  test("TestDiskThatRanOut: a write that failed for lack of space closes the disk for the run; new data goes to the next one", () => {
    const a = fakeDisk("A", 10 * MiB);
    const b = fakeDisk("B", 10 * MiB);
    const { events, hooks } = recorder();
    const budget = new SpaceBudget([{ disk: a.disk, options: options() }, { disk: b.disk, options: options() }], hooks);
    expect(budget.tryReserve(1 * MiB)!.disk).toBe(a.disk);
    budget.noRoomOn(a.disk);
    expect(events).toEqual(["out of space A → B"]);
    expect(budget.current).toBe(b.disk);
    // statfs says A has room: it takes nothing more in this run all the same.
    expect(budget.tryReserve(1 * KiB)!.disk).toBe(b.disk);
    // Said twice (two batches failing), it is reported once.
    budget.noRoomOn(a.disk);
    expect(events).toEqual(["out of space A → B"]);
  });

  test("TestParityRoomHeldUntilMade: a written copy's parity room stays reserved until the parity stage made its set", () => {
    const a = fakeDisk("A", 100 * MiB);
    const budget = new SpaceBudget([{ disk: a.disk, options: options({ parityPercent: 10 }) }]);
    const copy = budget.tryReserve(1 * MiB)!;
    a.statfs.free -= 1 * MiB;
    budget.release(copy, true, "temp-1");
    const whileParityPending = budget.available();
    expect(whileParityPending).toBeLessThan(100 * MiB - 1 * MiB - CATALOG);
    budget.releaseParity("temp-unknown");
    expect(budget.available()).toBe(whileParityPending);
    budget.releaseParity("temp-1");
    expect(budget.available()).toBe(100 * MiB - 1 * MiB - CATALOG);
  });

  test("TestClosedDisk: a full disk kept only for renames and links takes no new data; the next open disk does", () => {
    const a = fakeDisk("A", 10 * MiB);
    const b = fakeDisk("B", 10 * MiB);
    const budget = new SpaceBudget([{ disk: a.disk, options: options({ closed: true }) }, { disk: b.disk, options: options() }]);
    expect(budget.tryReserve(1 * KiB)!.disk).toBe(b.disk);
  });
});
