import { existsSync, lstatSync, mkdirSync } from "node:fs";
import { basename, isAbsolute, join, relative, resolve } from "node:path";
import type { Output } from "../../cli/output.ts";
import { BlaineError, ExitCode } from "../../errors.ts";
import { rsyncCopy } from "../../system/rsync.ts";
import { withChain } from "../chain.ts";
import type { MirrorConfig, MirrorDirectory } from "../config.ts";
import { gocryptfsPassword, requireKeyFile } from "../key.ts";
import { parseSnapshotName } from "../rotation.ts";
import { listSnapshots, openStore, requireOpenableEncryption, SNAPSHOTS_DIRECTORY } from "../store.ts";

/**
 * `blaine mirror restore PATH [--from KEY-DATE] --to DIR`: finds PATH in a
 * snapshot (the one named, else the newest holding it) and copies it into
 * DIR. PATH is the original absolute path, or one relative to the
 * directory mirrored (with --from, or when only one directory is).
 */
export interface RestoreRequest {
  readonly path: string;
  readonly from?: string;
  readonly to?: string;
}

/** The directory keys PATH may belong to, and PATH inside each. */
function candidates(config: MirrorConfig, path: string, fromKey: string | undefined): { dir: MirrorDirectory; inside: string }[] {
  const dirs = config.local.directories.filter((dir) => fromKey === undefined || dir.key === fromKey);
  if (isAbsolute(path)) {
    const found = dirs
      .map((dir) => ({ dir, inside: relative(dir.directory, resolve(path)) }))
      .filter(({ inside }) => inside === "" || (!inside.startsWith("..") && !isAbsolute(inside)));
    if (found.length === 0) throw new BlaineError(`${path} is in none of the mirrored directories${fromKey ? ` of ${fromKey}` : ""}`, ExitCode.usage);
    return found;
  }
  if (dirs.length > 1) throw new BlaineError(`${path}: give the original absolute path, or --from KEY-DATE (several directories are mirrored)`, ExitCode.usage);
  return dirs.map((dir) => ({ dir, inside: path.replace(/^\.\/+/, "").replace(/\/+$/, "") }));
}

export async function restoreFromMirror(config: MirrorConfig, request: RestoreRequest, output: Output): Promise<number> {
  if (!request.to) throw new BlaineError("restore needs --to DIR (where the file or directory is copied)", ExitCode.usage);
  const from = request.from ? parseSnapshotName(request.from) : undefined;
  if (request.from && !from) throw new BlaineError(`--from ${request.from}: expected a snapshot name KEY-YYYYMMDD-HHMMSS (blaine mirror list shows them)`, ExitCode.usage);
  if (from && !config.local.directories.some((dir) => dir.key === from.key)) throw new BlaineError(`--from ${request.from}: no directory key "${from.key}" in ${config.file}`, ExitCode.usage);
  const wanted = candidates(config, request.path, from?.key);
  requireOpenableEncryption(config);
  requireKeyFile(config);
  const password = config.store.encryption === "gocryptfs" ? gocryptfsPassword(config) : undefined;
  const to = resolve(request.to);
  return withChain(config.file, "command", async (chain, signal) => {
    const root = await openStore(chain, config, { readonly: true });
    const snapshots = listSnapshots(root)
      .filter((snapshot) => (from ? snapshot.name === from.name : wanted.some(({ dir }) => dir.key === snapshot.key)))
      .reverse();
    if (from && snapshots.length === 0) throw new BlaineError(`--from ${request.from}: no such snapshot (blaine mirror list shows them)`);
    for (const snapshot of snapshots) {
      const inside = wanted.find(({ dir }) => dir.key === snapshot.key)!.inside;
      let base = join(root, SNAPSHOTS_DIRECTORY, snapshot.name);
      if (password !== undefined) {
        const plain = chain.directory(`snapshot-${snapshot.name}`);
        await chain.mountGocryptfs(base, plain, password, { readonly: true, what: snapshot.name });
        base = plain;
      }
      const source = inside === "" ? base : join(base, inside);
      if (lstatSync(source, { throwIfNoEntry: false })) {
        const name = inside === "" ? snapshot.key : basename(inside);
        const target = join(to, name);
        if (existsSync(target)) throw new BlaineError(`${target} already exists; restore never overwrites (choose another --to)`, ExitCode.usage);
        mkdirSync(to, { recursive: true });
        if (inside === "") {
          mkdirSync(target);
          await rsyncCopy(`${source}/.`, target, { signal });
        } else {
          await rsyncCopy(source, to, { signal });
        }
        output.say(`Restored ${inside || "/"} of ${snapshot.key} from ${snapshot.name} (${snapshot.date.toISOString()}) to ${target}`);
        output.result({ restored: target, snapshot: snapshot.name, key: snapshot.key, path: inside });
        return ExitCode.ok;
      }
      if (password !== undefined) await chain.release(base);
    }
    const searched = snapshots.map((snapshot) => snapshot.name);
    throw new BlaineError(`${request.path} is in no snapshot${searched.length > 0 ? ` (searched ${searched.join(", ")})` : " (the store has none yet)"}`);
  });
}
