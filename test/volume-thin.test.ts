import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { thinDeltaOfFile } from "../lib/system/lvm.ts";
import { chunksOfDelta, parseThinDelta } from "../lib/volume/thin-delta.ts";
import { removeRoots, tempDir } from "./helpers/volume-env.ts";

/**
 * thin_delta for LVM thin volumes (issue 16), on real metadata: thin_dump
 * XML written here, made a metadata file by thin_restore, compared by
 * thin_delta (thin-provisioning-tools) — no device-mapper needed. Device 1
 * is the last session's snapshot, device 2 the new one.
 */
const roots: string[] = [];
afterAll(() => removeRoots(roots));
const missing = ["thin_restore", "thin_delta"].find((program) => !Bun.which(program));
if (missing) console.warn(`thin_delta tests skipped: ${missing} is not installed (Debian package thin-provisioning-tools)`);

interface Mapping {
  readonly origin: number;
  readonly data: number;
  readonly length?: number;
}

/** Pool metadata with two thin devices mapped as given (thin_dump's XML), restored into a metadata file. */
async function metadataFile(dataBlockSize: number, one: readonly Mapping[], two: readonly Mapping[]): Promise<string> {
  const dir = tempDir("blaine-thin-", roots);
  const device = (id: number, mappings: readonly Mapping[], time: number) => {
    const blocks = mappings.reduce((sum, mapping) => sum + (mapping.length ?? 1), 0);
    const lines = mappings.map((mapping) =>
      mapping.length && mapping.length > 1
        ? `    <range_mapping origin_begin="${mapping.origin}" data_begin="${mapping.data}" length="${mapping.length}" time="${time}"/>`
        : `    <single_mapping origin_block="${mapping.origin}" data_block="${mapping.data}" time="${time}"/>`,
    );
    return `  <device dev_id="${id}" mapped_blocks="${blocks}" transaction="0" creation_time="${time}" snap_time="1">\n${lines.join("\n")}\n  </device>`;
  };
  const xml = `<superblock uuid="" time="1" transaction="3" data_block_size="${dataBlockSize}" nr_data_blocks="4096">\n${device(1, one, 0)}\n${device(2, two, 1)}\n</superblock>\n`;
  writeFileSync(join(dir, "meta.xml"), xml);
  const meta = join(dir, "meta.bin");
  expect(Bun.spawnSync(["truncate", "-s", "4M", meta]).exitCode).toBe(0);
  const restored = Bun.spawnSync(["thin_restore", "-i", join(dir, "meta.xml"), "-o", meta]);
  if (restored.exitCode !== 0) throw new Error(`thin_restore failed: ${restored.stderr}`);
  return meta;
}

const sorted = (set: Set<number>) => [...set].sort((a, b) => a - b);

describe.skipIf(Boolean(missing))("thin_delta", () => {
  // Device 1: blocks 0–9 and 20. Device 2: 0–1 and 3–9 shared, 2 rewritten (new data block), 20 discarded,
  // 30 written, and 40–49 written past the end of a volume that shrank to 35 blocks.
  const one: Mapping[] = [{ origin: 0, data: 0, length: 10 }, { origin: 20, data: 10 }];
  const two: Mapping[] = [
    { origin: 0, data: 0, length: 2 },
    { origin: 2, data: 100 },
    { origin: 3, data: 3, length: 7 },
    { origin: 30, data: 101 },
    { origin: 40, data: 200, length: 10 },
  ];

  test("issue 16: thin_delta of real metadata (thin_restore): different and right_only are changed, left_only freed, in data_block_size units", async () => {
    const xml = await thinDeltaOfFile(await metadataFile(128, one, two), 1, 2);
    const delta = parseThinDelta(xml);
    expect(delta.blockBytes).toBe(128 * 512);
    expect(delta.changed).toEqual([[2, 1], [30, 1], [40, 10]]);
    expect(delta.freed).toEqual([[20, 1]]);
  });

  test("issue 16: changed thin blocks map to the volume's chunks, clamped to its size; a chunk wholly freed is zeros, one partly freed is read", async () => {
    const delta = parseThinDelta(await thinDeltaOfFile(await metadataFile(128, one, two), 1, 2));
    const size = 35 * 64 * 1024;
    // Chunks of one thin block (64 KiB): block 40–49 lie past the end and are dropped.
    const same = chunksOfDelta(delta, size, 64 * 1024);
    expect({ read: sorted(same.read), zero: sorted(same.zero) }).toEqual({ read: [2, 30], zero: [20] });
    // Chunks of two thin blocks (128 KiB): block 20 is half of chunk 10, so chunk 10 is read.
    const larger = chunksOfDelta(delta, size, 128 * 1024);
    expect({ read: sorted(larger.read), zero: sorted(larger.zero) }).toEqual({ read: [1, 10, 15], zero: [] });
    // The volume's last chunk is short: a freed range covering it whole makes it zeros.
    const short = chunksOfDelta({ blockBytes: 65536, changed: [], freed: [[34, 1]] }, 34 * 65536 + 1000, 128 * 1024);
    expect(sorted(short.zero)).toEqual([17]);
  });

  test("issue 16: larger thin blocks (data_block_size 256: 128 KiB) cover several 64 KiB chunks each", async () => {
    const delta = parseThinDelta(await thinDeltaOfFile(await metadataFile(256, one, two), 1, 2));
    expect(delta.blockBytes).toBe(128 * 1024);
    const chunks = chunksOfDelta(delta, 35 * 128 * 1024, 64 * 1024);
    expect({ read: sorted(chunks.read), zero: sorted(chunks.zero) }).toEqual({ read: [4, 5, 60, 61], zero: [40, 41] });
  });

  test("issue 16: thin_delta output that is not a diff is refused by name", () => {
    expect(() => parseThinDelta("<superblock></superblock>", "thin_delta of vg0/pool0")).toThrow("thin_delta of vg0/pool0");
  });
});
