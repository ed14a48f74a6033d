/**
 * The parity half of `blaine verify`: each content's PAR2 set must exist and
 * be whole; with --repair, damaged files are repaired from their sets (and
 * re-hashed) and damaged sets of intact content are made again. Called from
 * verifyDisks with what the data check found.
 */
import { basename } from "node:path";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import type { MountedDisk } from "../disk/mounted-disk.ts";
import { repairOnDisk } from "../disk/parity-repair.ts";
import { ParityStore } from "../disk/parity-store.ts";
import { syncFileSystem } from "../../fs/atomic.ts";
import { hashAlgorithmOf, hashFile } from "../../hashing.ts";
import { errorMessage } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import { quotedPath } from "../../fs/byte-names.ts";

export interface ParityVerification {
  /** Contents whose set was checked. */
  readonly setsChecked: number;
  /** Sets missing or damaged (their content is then unprotected), by a path of the content. */
  readonly damagedSets: readonly { readonly path: string; readonly message: string }[];
  /** Contents with no set (archived with --parity off; the next run with parity makes them). */
  readonly unprotected: number;
  /** Corrupt files repaired from parity (verify --repair), on every disk. */
  readonly repaired: readonly string[];
  /** Corrupt files parity could not repair, and why. */
  readonly unrepaired: readonly { readonly path: string; readonly message: string }[];
  /** Damaged sets made again from intact data (verify --repair). */
  readonly rebuiltSets: readonly string[];
}

interface DiskFindings {
  readonly corrupt: readonly { path: string; message: string }[];
}

/**
 * The parity check of every disk, and with `repair` the repairs.
 * `repairedByDisk[i]` lists what was repaired on `disks[i]`: the same path
 * can be on two mounted copies of a disk, and be repaired on one only.
 */
export async function verifyParity(
  catalog: ArchiveCatalog,
  disks: readonly MountedDisk[],
  findings: readonly DiskFindings[],
  options: { repair?: boolean; signal?: AbortSignal } = {},
): Promise<{ parity: ParityVerification; repairedByDisk: readonly (readonly string[])[] }> {
  const result = { setsChecked: 0, damagedSets: [] as { path: string; message: string }[], unprotected: 0, repaired: [] as string[], unrepaired: [] as { path: string; message: string }[], rebuiltSets: [] as string[] };
  const repairedByDisk: string[][] = [];
  for (const [i, disk] of disks.entries()) {
    const store = new ParityStore(disk.root);
    const alias = disk.alias;
    const corruptPaths = new Set(findings[i]?.corrupt.map((item) => item.path) ?? []);
    const repairedHere = new Set<string>();
    repairedByDisk.push([]);
    const markRepaired = (path: string) => {
      repairedHere.add(path);
      repairedByDisk[i].push(path);
      result.repaired.push(path);
    };
    const entries = catalog.entries(alias);
    const paritySets = catalog.paritySets(alias);

    if (options.repair) {
      for (const path of corruptPaths) {
        options.signal?.throwIfAborted();
        if (repairedHere.has(path)) continue;
        const content = entries.byPath(path);
        if (content?.kind !== "file") continue;
        const same = entries.pathsOfContent(content.hash);
        const outcome = await repairOnDisk(disk, content, same, options.signal);
        if (!outcome.ok) {
          result.unrepaired.push({ path, message: outcome.message ?? "not repaired" });
          continue;
        }
        markRepaired(path);
        // Hardlinks of the repaired file are whole again too.
        for (const other of same) {
          if (other === path || !corruptPaths.has(other)) continue;
          try {
            if (!repairedHere.has(other) && hashFile(disk.layout.dataPath(other), hashAlgorithmOf(content.hash)).hash === content.hash) markRepaired(other);
          } catch {
            // Still listed as corrupt.
          }
        }
      }
    }

    const sets = paritySets.all();
    let rebuilt = false;
    for (const set of sets) {
      options.signal?.throwIfAborted();
      result.setsChecked++;
      if (store.check(set.hash, set.size)) continue;
      const paths = entries.pathsOfContent(set.hash);
      const path = paths[0] ?? set.hash;
      const intact = paths.find((p) => !corruptPaths.has(p) || repairedHere.has(p));
      if (options.repair && intact) {
        try {
          const percent = (set.recoverySlices * 100) / Math.max(1, Math.ceil(set.size / set.sliceSize));
          await store.create(set.hash, disk.layout.dataPath(intact), basename(intact), { percent, engine: "builtin" }, { signal: options.signal });
          result.rebuiltSets.push(path);
          rebuilt = true;
          continue;
        } catch (error) {
          result.damagedSets.push({ path, message: `parity is damaged and could not be made again: ${errorMessage(error)}` });
          continue;
        }
      }
      result.damagedSets.push({ path, message: "its parity is missing or damaged" });
    }
    if (rebuilt) syncFileSystem(disk.root);
    result.unprotected += paritySets.countUnprotected();
  }
  return { parity: result, repairedByDisk };
}

export function printParity(parity: ParityVerification, output: Output): void {
  for (const path of parity.repaired) output.say(`REPAIRED ${quotedPath(path)} from its parity (hash checked)`);
  for (const item of parity.unrepaired) output.say(`UNREPAIRABLE ${quotedPath(item.path)}: ${item.message}`);
  for (const item of parity.damagedSets) output.say(`PARITY DAMAGED ${quotedPath(item.path)}: ${item.message}`);
  for (const path of parity.rebuiltSets) output.say(`PARITY REBUILT ${quotedPath(path)}`);
  output.say(
    `Parity: ${parity.setsChecked} sets checked, ${parity.damagedSets.length} damaged or missing` +
      (parity.unprotected > 0 ? `, ${parity.unprotected} contents without parity (a run with --parity makes them)` : "") + ".",
  );
}
