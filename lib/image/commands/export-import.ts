import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../../fs/atomic.ts";
import { BlaineError, ExitCode, UsageError, errorMessage } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import type { ImageSettings } from "../settings.ts";
import { parseVersionDoc, versionDocText } from "../version-doc.ts";
import { openImageStore, withCatalog } from "./open-image.ts";

/** `blaine image export VERSION FILE`: the version's metadata as the documented JSON document (version-doc.ts). */
export async function exportImageVersion(settings: ImageSettings, given: string, file: string, output: Output): Promise<ExitCode> {
  return withCatalog(settings, false, async (catalog) => {
    const version = await catalog.requireVersion(given);
    const blocks = [];
    for await (const block of catalog.allBlocks(version.uid)) blocks.push(block);
    writeFileAtomic(file, versionDocText(version, blocks));
    output.say(`exported version ${version.uid} to ${file}`);
    output.result({ uid: version.uid, file });
    return ExitCode.ok;
  });
}

/**
 * `blaine image import FILE|UID`: a version's metadata back into the
 * catalog — from an exported FILE, or by UID from the store's own copy
 * (rebuilding a lost catalog). Chunks the store lacks are counted, and the
 * version is then invalid; the store gets the metadata if it lacked it.
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
  const doc = parseVersionDoc(text, from);
  return withCatalog(settings, true, async (catalog) => {
    if (await catalog.version(doc.version.uid)) throw new BlaineError(`version ${doc.version.uid} is already in ${catalog.name}`, ExitCode.usage);
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
    await catalog.insertVersion(version, blocks, present);
    if ((await store.getVersionDoc(version.uid)) === undefined) await store.putVersionDoc(version.uid, versionDocText(version, blocks));
    if (missing.size > 0) output.say(`warning: ${missing.size} chunk(s) of version ${version.uid} are missing from store ${store.name}; it is imported as invalid`);
    output.say(`imported version ${version.uid} (${version.name}, ${version.status})`);
    output.result({ uid: version.uid, status: version.status, missingChunks: missing.size });
    return missing.size > 0 ? ExitCode.damage : ExitCode.ok;
  });
}
