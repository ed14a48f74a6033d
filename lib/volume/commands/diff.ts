import type { Output } from "../../cli/output.ts";
import { open as openFile } from "node:fs/promises";
import { fstatSync } from "node:fs";
import { ExitCode, UsageError } from "../../errors.ts";
import { sizeOf } from "../../fs/device-size.ts";
import { blockCount } from "../../image/stages/block-ranges.ts";
import { readBlock } from "../../image/stages/read-blocks.ts";
import { blockHashOrZero } from "../../image/store/chunk-format.ts";
import { ChangeMap } from "../change-map.ts";
import { withArchive } from "../open-archive.ts";
import { openChangeSource } from "../sources/change-source.ts";
import type { VolumeSettings } from "../settings.ts";

/**
 * `blaine volume diff NAME [--remap]`: reads the live volume and compares
 * every chunk with the newest session's; reports the chunks that differ.
 * `--remap` adds them to the change map, so the next send reads them even
 * if the metadata missed them.
 */
export async function diffVolume(settings: VolumeSettings, request: { name: string; remap: boolean }, output: Output): Promise<ExitCode> {
  return withArchive(settings, { store: false, write: request.remap }, async (open) => {
    const volume = await open.requireVolume(request.name);
    const newest = (await open.sessions(request.name)).at(-1);
    if (!newest) throw new UsageError(`volume ${request.name} has no sessions yet: nothing to compare with`);
    const hashes = await open.catalog.hashesByIndex(newest.uid);
    const path = await (await openChangeSource(open.archive.source)).livePath(request.name);
    const handle = await openFile(path, "r");
    const differing: number[] = [];
    let size: number;
    try {
      size = sizeOf(fstatSync(handle.fd));
      const count = Math.max(blockCount(size, open.chunkSize), blockCount(newest.size, open.chunkSize));
      // One buffer for every block: they are read one after another.
      const buffer = Buffer.allocUnsafe(Math.min(open.chunkSize, size));
      for (let index = 0; index < count; index++) {
        const offset = index * open.chunkSize;
        if (offset >= size) {
          differing.push(index);
          continue;
        }
        const length = Math.min(open.chunkSize, size - offset);
        const data = await readBlock(handle, { index, offset, length }, path, buffer.subarray(0, length));
        const hash = blockHashOrZero(data);
        if (hash !== (hashes.get(index) ?? null) || (index === count - 1 && size !== newest.size)) differing.push(index);
      }
    } finally {
      await handle.close();
    }
    let remapped = false;
    if (request.remap && differing.length > 0 && volume.trackedSince !== null) {
      const map = ChangeMap.parse(volume.changeMap);
      map.addAll(differing.filter((index) => index * open.chunkSize < size));
      await open.volumes.setTracking(request.name, volume.trackedSince, map.text());
      remapped = true;
    }
    output.say(
      differing.length === 0
        ? `${request.name}: the live volume equals session ${newest.snapshot}`
        : `${request.name}: ${differing.length} chunk(s) differ from session ${newest.snapshot}${remapped ? " (added to the change map)" : ""}`,
    );
    output.result({ volume: request.name, session: newest.snapshot, chunkSize: open.chunkSize, differingChunks: differing, remapped });
    return ExitCode.ok;
  });
}
