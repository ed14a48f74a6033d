import type { Output } from "../../cli/output.ts";
import { ExitCode } from "../../errors.ts";
import { DamagedChunk, blockHash, decodeChunk } from "../../image/store/chunk-format.ts";
import type { ChunkStore } from "../../image/store/chunk-store.ts";
import { errorMessage } from "../../errors.ts";
import { mapBounded } from "../../pipeline/bounded.ts";
import { formatBytes } from "../../size.ts";
import { withArchive } from "../open-archive.ts";
import type { VolumeSettings } from "../settings.ts";
import { chooseSession } from "./receive.ts";

/** Reads a chunk and checks it: undefined when good, else the problem. */
async function checkChunk(store: ChunkStore, hash: string, size: number): Promise<string | undefined> {
  let object: Uint8Array | undefined;
  try {
    object = await store.getChunk(hash);
  } catch (error) {
    // An encrypted destination's object that does not decrypt.
    if (error instanceof DamagedChunk) return `damaged: ${error.message}`;
    throw error;
  }
  if (!object) return "missing from the destination";
  try {
    const data = await decodeChunk(object);
    if (data.length !== size) return `holds ${data.length} bytes, the chunk is ${size}`;
    return blockHash(data) === hash ? undefined : "its content does not match its hash (bit rot?)";
  } catch (error) {
    return `damaged: ${errorMessage(error)}`;
  }
}

/**
 * `blaine volume verify NAME [--session DT]`: reads every chunk of the
 * session (each distinct chunk once) from the destination and checks its
 * hash. Bad chunks are marked in the catalog, with every session holding
 * them (as `blaine image scrub` does); exit 4. A session whose chunks
 * all check good is valid again.
 */
export async function verifyVolume(settings: VolumeSettings, request: { name: string; session: string | undefined }, output: Output): Promise<ExitCode> {
  return withArchive(settings, { store: true, write: false }, async (open) => {
    const session = await chooseSession(open, request.name, request.session);
    const sizes = new Map<string, number>();
    for await (const block of open.catalog.allBlocks(session.uid)) if (block.hash) sizes.set(block.hash, block.size);
    async function* each() {
      yield* sizes;
    }
    const bad: { hash: string; problem: string }[] = [];
    let bytesChecked = 0;
    for await (const outcome of mapBounded(each(), async ([hash, size]) => ({ hash, size, problem: await checkChunk(open.store, hash, size) }), { concurrency: 4 })) {
      if (outcome.problem) bad.push({ hash: outcome.hash, problem: outcome.problem });
      else bytesChecked += outcome.size;
    }
    const invalid = await open.catalog.markBad(bad.map((chunk) => chunk.hash));
    // Every chunk of the session read and good (a damaged one put back since): valid again, as after a full image scrub.
    const revalidated = bad.length === 0 ? await open.catalog.revalidate([session.uid]) : [];
    for (const chunk of bad) output.say(`bad chunk ${chunk.hash}: ${chunk.problem}`);
    const names = new Map((await open.catalog.versions(request.name)).map((version) => [version.uid, version.snapshot]));
    for (const uid of invalid) output.say(`session ${names.get(uid) ?? uid} is invalid: it holds a bad chunk`);
    for (const uid of revalidated) output.say(`session ${names.get(uid) ?? uid} is valid again: every chunk checked good`);
    output.say(`${request.name} session ${session.snapshot}: ${sizes.size} chunk(s), ${formatBytes(bytesChecked)} checked, ${bad.length} bad`);
    output.result({ volume: request.name, session: session.snapshot, chunksChecked: sizes.size, bytesChecked, badChunks: bad, invalidSessions: invalid.map((uid) => names.get(uid) ?? uid), revalidatedSessions: revalidated.map((uid) => names.get(uid) ?? uid) });
    return bad.length > 0 ? ExitCode.damage : ExitCode.ok;
  });
}
