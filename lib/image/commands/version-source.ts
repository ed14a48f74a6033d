import { BlaineError, ExitCode } from "../../errors.ts";
import type { BlockRow, ImageCatalog, VersionRow } from "../catalog/image-catalog.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import { parseVersionDoc } from "../version-doc.ts";

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
  const doc = parseVersionDoc(text, `store ${store.name}, version ${uid}`);
  return { version: doc.version, blocks: async function* () { yield* doc.blocks; } };
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
