import { UsageError } from "../../errors.ts";
import {
  createThinSnapshot,
  logicalVolumeExists,
  removeLogicalVolume,
  renameLogicalVolume,
  requireLvm,
  thinDelta,
  thinVolumeInfo,
} from "../../system/lvm.ts";
import { chunksOfDelta, parseThinDelta } from "../thin-delta.ts";
import type { ChangeSource, VolumeSnapshot } from "./change-source.ts";

/**
 * LVM thin volumes of one pool (`--source vg/pool`), sparsebak's own
 * source. A volume's snapshot is the thin snapshot vg/NAME.blaine-snap;
 * the next session's is NAME.blaine-next, and the chunks changed between
 * them come from thin_delta on a reserved metadata snapshot of the pool.
 * Every step needs device-mapper: without it, a clear error and exit 2.
 */
export class LvmThinSource implements ChangeSource {
  readonly kind = "LVM thin";
  readonly #vg: string;
  readonly #pool: string;

  constructor(source: string) {
    [this.#vg, this.#pool] = source.split("/") as [string, string];
  }

  async check(name: string): Promise<void> {
    requireLvm();
    if (!(await logicalVolumeExists(this.#vg, name))) throw new UsageError(`volume ${name}: no logical volume ${this.#vg}/${name}`);
  }

  async livePath(name: string): Promise<string> {
    await this.check(name);
    return `/dev/${this.#vg}/${name}`;
  }

  async snapshot(name: string, chunkSize: number, delta: boolean): Promise<VolumeSnapshot> {
    await this.check(name);
    const previous = `${name}.blaine-snap`;
    const next = `${name}.blaine-next`;
    if (await logicalVolumeExists(this.#vg, next)) await removeLogicalVolume(this.#vg, next);
    await createThinSnapshot(this.#vg, name, next);
    let changed: { read: Set<number>; zero: Set<number> } | undefined;
    if (delta && (await logicalVolumeExists(this.#vg, previous))) {
      const before = await thinVolumeInfo(this.#vg, previous);
      const after = await thinVolumeInfo(this.#vg, next);
      const xml = await thinDelta(this.#vg, this.#pool, before.thinId, after.thinId);
      changed = chunksOfDelta(parseThinDelta(xml, `thin_delta of ${this.#vg}/${this.#pool}`), after.size, chunkSize);
    }
    return {
      path: `/dev/${this.#vg}/${next}`,
      changed,
      method: changed ? "thin_delta" : "full read",
      commit: async () => {
        if (await logicalVolumeExists(this.#vg, previous)) await removeLogicalVolume(this.#vg, previous);
        await renameLogicalVolume(this.#vg, next, previous);
      },
      discard: async () => removeLogicalVolume(this.#vg, next),
    };
  }

  async forget(name: string): Promise<void> {
    for (const snapshot of [`${name}.blaine-snap`, `${name}.blaine-next`]) {
      if (await logicalVolumeExists(this.#vg, snapshot)) await removeLogicalVolume(this.#vg, snapshot);
    }
  }
}

/** Refuses a thin pool `vg/pool` this machine cannot use: no device-mapper or LVM tools (exit 2), or no such pool (arch-init). */
export async function checkThinPool(source: string): Promise<void> {
  const [vg, pool] = source.split("/") as [string, string];
  requireLvm();
  if (!(await logicalVolumeExists(vg, pool))) throw new UsageError(`--source ${source}: no thin pool ${vg}/${pool} (lvs lists the pools)`);
}
