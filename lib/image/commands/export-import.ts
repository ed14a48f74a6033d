import { existsSync, readFileSync } from "node:fs";
import { requireFolderOf, writeFileAtomic } from "../../fs/atomic.ts";
import { BlaineError, ExitCode, UsageError, errorMessage } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import type { ImageSettings } from "../settings.ts";
import { parseVersionDoc, versionDocText } from "../version-doc.ts";
import { openImageStore, withCatalog } from "./open-image.ts";
import { wholeVersionDoc } from "./version-source.ts";

/** `blaine image export VERSION FILE`: the version's metadata as the documented JSON document (version-doc.ts), whole: every block listed, nothing inherited. */
export async function exportImageVersion(settings: ImageSettings, given: string, file: string, output: Output): Promise<ExitCode> {
  // Said of FILE: the first to find the folder missing would be the open of the hidden temp beside it.
  requireFolderOf(file);
  return withCatalog(settings, false, async (catalog) => {
    const version = await catalog.requireVersion(given);
    const blocks = [];
    for await (const block of catalog.allBlocks(version.uid)) blocks.push(block);
    writeFileAtomic(file, versionDocText({ ...version, inheritsUid: null }, blocks));
    output.say(`exported version ${version.uid} to ${file}`);
    output.result({ uid: version.uid, file });
    return ExitCode.ok;
  });
}

/**
 * `blaine image import FILE|UID`: a version's metadata back into the
 * catalog — from an exported FILE, or by UID from the store's own copy
 * (rebuilding a lost catalog). Chunks the store lacks are counted, and the
 * version is then invalid; the store gets the metadata if it lacked it. A
 * document that inherits from a version the catalog holds is imported as
 * it is; one whose parent the catalog lacks is made whole from the store's
 * documents, and the store's copy is replaced by the whole one (the store's
 * documents say what the catalog says: no document may name a parent the
 * catalog could remove without rewriting it).
 */
export async function importImageVersion(settings: ImageSettings, given: string, output: Output): Promise<ExitCode> {
  const store = await openImageStore(settings, { create: false });
  let text: string | undefined;
  let from = given;
  if (existsSync(given)) {
    try {
      text = readFileSync(given, "utf8");
    } catch (error) {
      throw new UsageError(`${given}: ${errorMessage(error)}`);
    }
  } else {
    text = await store.getVersionDoc(given);
    from = `store ${store.name}, version ${given}`;
    if (text === undefined) throw new UsageError(`${given}: no such file, and no such version in store ${store.name}`);
  }
  const parsed = parseVersionDoc(text, from);
  return withCatalog(settings, true, async (catalog) => {
    if (await catalog.version(parsed.version.uid)) throw new BlaineError(`version ${parsed.version.uid} is already in ${catalog.name}`, ExitCode.usage);
    const parentHeld = parsed.version.inheritsUid !== null && (await catalog.version(parsed.version.inheritsUid)) !== undefined;
    const doc = parsed.version.inheritsUid === null || parentHeld ? parsed : await wholeVersionDoc(store, parsed);
    const hashes = [...new Set(doc.blocks.flatMap((block) => (block.hash ? [block.hash] : [])))];
    const missing = new Set<string>();
    const present: { hash: string; size: number }[] = [];
    for (const hash of hashes) {
      const size = await store.chunkSize(hash);
      if (size === undefined) missing.add(hash);
      else present.push({ hash, size });
    }
    const blocks = doc.blocks.map((block) => (block.hash && missing.has(block.hash) ? { ...block, valid: false } : block));
    const version = missing.size > 0 && doc.version.status === "valid" ? { ...doc.version, status: "invalid" as const } : doc.version;
    const status = await catalog.insertVersion(version, blocks, present);
    if (doc !== parsed || (await store.getVersionDoc(version.uid)) === undefined) await store.putVersionDoc(version.uid, versionDocText(version, blocks));
    if (missing.size > 0) output.say(`warning: ${missing.size} chunk(s) of version ${version.uid} are missing from store ${store.name}; it is imported as invalid`);
    if (status !== version.status) output.say(`warning: version ${version.uid} inherits blocks a scrub found bad; it is imported as invalid`);
    output.say(`imported version ${version.uid} (${version.name}, ${status})`);
    output.result({ uid: version.uid, status, missingChunks: missing.size });
    return missing.size > 0 || status !== version.status ? ExitCode.damage : ExitCode.ok;
  });
}
