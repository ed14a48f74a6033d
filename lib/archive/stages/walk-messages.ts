/**
 * What crosses between `walk()` and its walk worker: JSON strings of
 * tuples, as for the copy workers (one string per message is cheap to pass;
 * cloning many small objects is not).
 *
 * To the worker: one start message (sources, exclude rules, skip paths),
 * then credits: each lets the worker send one more chunk, so it runs at
 * most a few chunks ahead of the consumer whatever the tree's size.
 * From the worker: chunks of walk records; the last one says so; a failure
 * that is not about one path (a bug) ends the stream.
 */
import type { ExcludeRule } from "../../glob.ts";
import type { WalkRecord } from "./walk-tree.ts";

/** An ExcludeRule as data (its RegExp as source and flags), so the worker gets the very same rule. */
type ExcludeRuleTuple = [pattern: string, directoryOnly: boolean, matchesName: boolean, anchored: boolean, source: string, flags: string];

export interface WalkStart {
  readonly sources: readonly string[];
  readonly excludes: readonly ExcludeRule[];
  readonly skipPaths: readonly string[];
  /** The archive whose disks are not walked (see TreeWalk). */
  readonly archiveId?: string;
}

type ToWorkerTuple =
  | [kind: "start", sources: readonly string[], excludes: ExcludeRuleTuple[], skipPaths: readonly string[], archiveId: string | null]
  | [kind: "credit", chunks: number];
export type ToWorker = ({ readonly kind: "start" } & WalkStart) | { readonly kind: "credit"; readonly chunks: number };

/** [0, records]: more follow; [1, records]: the walk's end; [2, message]: the worker failed. */
type FromWorkerTuple = [status: 0 | 1, records: WalkRecord[]] | [status: 2, message: string];
export type FromWorker = { readonly kind: "chunk"; readonly records: WalkRecord[]; readonly last: boolean } | { readonly kind: "failed"; readonly message: string };

const ruleTuple = (rule: ExcludeRule): ExcludeRuleTuple => [rule.pattern, rule.directoryOnly, rule.matchesName, rule.anchored, rule.regexp.source, rule.regexp.flags];
const ruleOf = ([pattern, directoryOnly, matchesName, anchored, source, flags]: ExcludeRuleTuple): ExcludeRule => ({
  pattern,
  directoryOnly,
  matchesName,
  anchored,
  regexp: new RegExp(source, flags),
});

export function encodeStart(start: WalkStart): string {
  return JSON.stringify(["start", start.sources, start.excludes.map(ruleTuple), start.skipPaths, start.archiveId ?? null] satisfies ToWorkerTuple);
}

export function encodeCredit(chunks: number): string {
  return JSON.stringify(["credit", chunks] satisfies ToWorkerTuple);
}

export function decodeToWorker(message: string): ToWorker {
  const tuple = JSON.parse(message) as ToWorkerTuple;
  if (tuple[0] === "credit") return { kind: "credit", chunks: tuple[1] };
  return { kind: "start", sources: tuple[1], excludes: tuple[2].map(ruleOf), skipPaths: tuple[3], archiveId: tuple[4] ?? undefined };
}

export function encodeChunk(records: WalkRecord[], last: boolean): string {
  return JSON.stringify([last ? 1 : 0, records] satisfies FromWorkerTuple);
}

export function encodeFailure(message: string): string {
  return JSON.stringify([2, message] satisfies FromWorkerTuple);
}

export function decodeFromWorker(message: string): FromWorker {
  const tuple = JSON.parse(message) as FromWorkerTuple;
  if (tuple[0] === 2) return { kind: "failed", message: tuple[1] };
  return { kind: "chunk", records: tuple[1], last: tuple[0] === 1 };
}
