import type { FileRecord } from "../catalog/records.ts";

/** One change as recorded in an intents row, enough to tell later whether it happened. */
export interface IntentChange {
  readonly op: "place" | "rename" | "delete";
  readonly path: string;
  readonly fromPath?: string;
  /** The temp a placement moves into place. */
  readonly tempName?: string;
  /** What `path` holds afterwards (every op but delete); its path is `path`. */
  readonly record?: FileRecord;
  /** Brings one copy to the host catalog's state; the host's files are not touched (see DiskChange). */
  readonly diskOnly?: boolean;
}

/**
 * The intents row's text: a JSON array of tuples after a format tag. A
 * batch of 2000 small files wrote 600 KB of keyed objects (each path twice)
 * and spent more on making that text than on its catalog rows; tuples are
 * half the size.
 */
const FORMAT = "v2";

type IntentTuple =
  | [op: "delete", path: string, fromPath: null, tempName: null, diskOnly: 0 | 1]
  | [
      op: "place" | "rename",
      path: string,
      fromPath: string | null,
      tempName: string | null,
      diskOnly: 0 | 1,
      kind: FileRecord["kind"],
      size: number,
      mtimeMs: number,
      mode: number,
      dev: number,
      ino: number,
      hash: string,
      linkTarget: string | null,
      /** Absent in intents written before it was kept. */
      mtimeNsec?: number | null,
    ];

export function encodeIntents(changes: readonly IntentChange[]): string {
  const tuples: (string | IntentTuple)[] = [FORMAT];
  for (const change of changes) {
    const diskOnly = change.diskOnly ? 1 : 0;
    if (change.op === "delete") {
      tuples.push(["delete", change.path, null, null, diskOnly]);
      continue;
    }
    const r = change.record!;
    tuples.push([change.op, r.path, change.fromPath ?? null, change.tempName ?? null, diskOnly, r.kind, r.size, r.mtimeMs, r.mode, r.dev, r.ino, r.hash, r.linkTarget, r.mtimeNsec ?? null]);
  }
  return JSON.stringify(tuples);
}

/** Reads an intents row, in this format or the keyed objects of earlier versions (a killed older run leaves those). */
export function decodeIntents(text: string): IntentChange[] {
  const parsed = JSON.parse(text) as unknown[];
  if (parsed[0] !== FORMAT) return parsed as IntentChange[];
  return (parsed.slice(1) as IntentTuple[]).map((tuple): IntentChange => {
    const diskOnly = tuple[4] === 1 ? true : undefined;
    if (tuple[0] === "delete") return { op: "delete", path: tuple[1], diskOnly };
    const [op, path, fromPath, tempName, , kind, size, mtimeMs, mode, dev, ino, hash, linkTarget, mtimeNsec] = tuple;
    return {
      op,
      path,
      fromPath: fromPath ?? undefined,
      tempName: tempName ?? undefined,
      record: { path, kind, size, mtimeMs, mtimeNsec: mtimeNsec ?? null, mode, dev, ino, hash, linkTarget },
      diskOnly,
    };
  });
}
