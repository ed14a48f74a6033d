import { BlaineError, ExitCode } from "../../errors.ts";
import type { BlockRow, ImageCatalog, VersionRow } from "../catalog/image-catalog.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import { parseVersionDoc, type VersionDoc } from "../version-doc.ts";

/** A version and its blocks, from the catalog or (db-less) from the store's copy of its metadata. */
export interface VersionSource {
  readonly version: VersionRow;
  blocks(): AsyncIterable<BlockRow>;
}

export async function versionFromCatalog(catalog: ImageCatalog, given: string): Promise<VersionSource> {
  const version = await catalog.requireVersion(given);
  return { version, blocks: () => catalog.allBlocks(version.uid) };
}

/** The version whose uid is (or starts with, 8 characters at least) `given`, as the store keeps it. */
export async function versionFromStore(store: ChunkStore, given: string): Promise<VersionSource> {
  const uids = await store.listVersionDocs();
  const matches = uids.filter((uid) => uid === given || (given.length >= 8 && uid.startsWith(given)));
  const uid = matches.includes(given) ? given : matches.length === 1 ? matches[0] : undefined;
  if (!uid) {
    throw new BlaineError(
      matches.length > 1 ? `version "${given}" is ambiguous in store ${store.name}: give more of its uid` : `no version "${given}" in store ${store.name}`,
      ExitCode.usage,
    );
  }
  const text = await store.getVersionDoc(uid);
  if (text === undefined) throw new BlaineError(`no version "${given}" in store ${store.name}`, ExitCode.usage);
  const doc = await wholeVersionDoc(store, parseVersionDoc(text, `store ${store.name}, version ${uid}`));
  return { version: doc.version, blocks: async function* () { yield* doc.blocks; } };
}

/**
 * A version's document made whole from the store: its own blocks, and at
 * every other index below its block count those of the documents of the
 * versions it inherits from, nearest first (see version-doc.ts); the
 * result inherits nothing. A document it needs that the store lacks is an
 * error naming both versions.
 */
export async function wholeVersionDoc(store: ChunkStore, doc: VersionDoc): Promise<VersionDoc> {
  if (!doc.version.inheritsUid) return doc;
  const blocks = new Map<number, BlockRow>();
  const seen = new Set<string>([doc.version.uid]);
  // A version passes on only the indexes below its own block count (see image-catalog.ts resolvedRows).
  let count = Infinity;
  for (let current: VersionDoc | undefined = doc; current; ) {
    count = Math.min(count, Math.ceil(current.version.size / current.version.blockSize));
    for (const block of current.blocks) if (block.idx < count && !blocks.has(block.idx)) blocks.set(block.idx, block);
    const parent: string | null = current.version.inheritsUid;
    if (!parent) break;
    if (seen.has(parent)) throw new BlaineError(`store ${store.name}: the versions version ${doc.version.uid} inherits from name each other (${parent})`);
    seen.add(parent);
    const text = await store.getVersionDoc(parent);
    if (text === undefined) {
      throw new BlaineError(`store ${store.name}: version ${doc.version.uid} inherits blocks from version ${parent}, whose document the store does not hold`, ExitCode.damage);
    }
    current = parseVersionDoc(text, `store ${store.name}, version ${parent}`);
  }
  return { version: { ...doc.version, inheritsUid: null }, blocks: [...blocks.values()].sort((a, b) => a.idx - b.idx) };
}

/** Every version the store keeps metadata of (db-less ls). */
export async function versionsFromStore(store: ChunkStore): Promise<VersionRow[]> {
  const versions: VersionRow[] = [];
  for (const uid of await store.listVersionDocs()) {
    const text = await store.getVersionDoc(uid);
    if (text !== undefined) versions.push(parseVersionDoc(text, `store ${store.name}, version ${uid}`).version);
  }
  return versions.sort((a, b) => a.date - b.date || a.uid.localeCompare(b.uid));
}
