import { existsSync, statSync } from "node:fs";
import { isAbsolute, join, normalize } from "node:path";
import { BlaineError, ExitCode, UsageError, errorMessage } from "../errors.ts";
import { openStore, type ChunkStore, type S3Settings } from "../image/store/chunk-store.ts";
import { ARCHIVE_DOC, parseArchiveDoc, type ArchiveSettings } from "./archive-settings.ts";

/**
 * Where a volume archive's chunks and metadata go (sparsebak's --dest):
 *
 *   internal:/path             a local or mounted directory (the image directory store)
 *   s3://bucket/prefix         an S3 bucket (the image S3 store)
 *   ssh://user@host[:port]/path  a directory on another host, over ssh
 *
 * each with the archive's --subdir below it. The store is lib/image's,
 * opened through openStore from the spec made here. A destination that is
 * not there (a disk not mounted, an empty mountpoint) is an error, never
 * a new store: only arch-init creates one.
 */
export type DestinationKind = "internal" | "s3" | "ssh";

export interface Destination {
  readonly kind: DestinationKind;
  /** DEST as the user gave it. */
  readonly given: string;
  /** The store's spec for openStore (DEST and SUBDIR joined). */
  readonly spec: string;
  /** internal: the directory DEST names (which must exist: a mountpoint, say). */
  readonly base?: string;
}

function cleanSubdir(subdir: string): string {
  const clean = normalize(subdir).replace(/^\/+|\/+$/g, "");
  if (clean === "." || clean === "") return "";
  if (clean.split("/").includes("..")) throw new UsageError(`--subdir ${subdir}: must stay below the destination (no ..)`);
  return clean;
}

export function parseDestination(dest: string, subdir = ""): Destination {
  const below = cleanSubdir(subdir);
  const append = (prefix: string) => (below ? `${prefix.replace(/\/+$/, "")}/${below}` : prefix);
  if (dest.startsWith("internal:")) {
    const path = dest.slice("internal:".length);
    if (!isAbsolute(path)) throw new UsageError(`--dest ${dest}: internal: takes an absolute path (internal:/mnt/backup)`);
    return { kind: "internal", given: dest, spec: below ? join(path, below) : normalize(path), base: normalize(path) };
  }
  if (dest.startsWith("s3://")) {
    // The S3 store's own parser: credentials in the URL are refused without being shown (they go in [volume]).
    const { parseS3Url } = require("../image/store/s3-store.ts") as typeof import("../image/store/s3-store.ts");
    parseS3Url(dest, "--dest", "volume");
    return { kind: "s3", given: dest, spec: append(dest) };
  }
  if (dest.startsWith("ssh://")) {
    // The ssh store's own parser: the same URLs (IPv6 hosts too), and a password in one is refused without being shown.
    // Loaded here: a send to a local or S3 destination loads none of ssh's modules.
    const { parseSshUrl } = require("../system/ssh.ts") as typeof import("../system/ssh.ts");
    parseSshUrl(dest, "--dest");
    return { kind: "ssh", given: dest, spec: append(dest) };
  }
  throw new UsageError(`--dest ${dest}: give internal:/path, ssh://user@host[:port]/path or s3://bucket/prefix`);
}

/** Said when a destination is not there: never written into, only reported. */
function unreachable(destination: Destination, why: string): BlaineError {
  return new BlaineError(`destination ${destination.given}${destination.spec !== destination.given ? ` (${destination.spec})` : ""} ${why}; nothing was written`, ExitCode.incomplete);
}

/**
 * Creates the destination's store for a new archive (arch-init): DEST must
 * exist (a mounted disk's directory, a bucket), and not be in a mountpoint
 * /etc/fstab lists that is not mounted (an empty directory then, not the
 * disk); the store goes at DEST/SUBDIR, made there, and must be new.
 */
export async function createDestination(destination: Destination, s3: S3Settings, keyfile: string | undefined): Promise<ChunkStore> {
  if (destination.kind === "internal") {
    const base = destination.base as string;
    if (!existsSync(base) || !statSync(base).isDirectory()) throw unreachable(destination, `is not there: ${base} is not a directory (is its disk mounted?)`);
    // Only a new archive is checked against /etc/fstab: every other verb opens the destination it names.
    const { fstabFile, unmountedFstabMountpoint } = await import("../system/fstab.ts");
    const unmounted = unmountedFstabMountpoint(destination.spec);
    if (unmounted) throw unreachable(destination, `is not there: ${unmounted} is a mountpoint in ${fstabFile()} that is not mounted (mount its disk first)`);
  }
  let store: ChunkStore;
  try {
    store = await openStore(destination.spec, { create: true, s3, keyfile });
  } catch (error) {
    if (error instanceof BlaineError) {
      const said = error.message.startsWith(`--store ${destination.spec}: `) ? error.message.slice(`--store ${destination.spec}: `.length) : error.message;
      throw new BlaineError(`--dest ${destination.given}: ${said}`, error.exitCode);
    }
    throw unreachable(destination, `cannot be reached: ${errorMessage(error)}`);
  }
  if ((await store.getMetaDoc(ARCHIVE_DOC)) !== undefined) {
    await store.close();
    throw new BlaineError(`destination ${destination.given} already holds a volume archive; give another --dest or --subdir (or arch-delete it with its catalog)`, ExitCode.usage);
  }
  return store;
}

/**
 * Opens the destination of an existing archive: it must be there and hold
 * this archive (its settings document naming the same uid as the catalog).
 * An archive being deleted may have lost its document already (arch-delete
 * removes it just before the catalog's rows).
 */
export async function openDestination(archive: ArchiveSettings, s3: S3Settings, keyfile: string | undefined, deleting = false): Promise<ChunkStore> {
  const destination = parseDestination(archive.dest, archive.subdir);
  if (archive.encrypted && !keyfile) {
    throw new BlaineError(`the archive at ${destination.given} is encrypted: give --keyfile FILE (arch-init recorded none that can be read)`, ExitCode.usage);
  }
  if (destination.kind === "internal" && !existsSync(join(destination.spec, "store.json"))) {
    throw unreachable(destination, "holds no volume archive (is its disk mounted?)");
  }
  let store: ChunkStore;
  try {
    store = await openStore(destination.spec, { create: false, s3, keyfile: archive.encrypted ? keyfile : undefined });
  } catch (error) {
    // A wrong or missing key, ssh refusing, … are said as they are (of the destination, as the user named it: the
    // store's words name --store, an option of blaine image); a store that is not there is the archive not there.
    if (error instanceof BlaineError && !/not an image store|no store\.json|: no directory /.test(error.message)) {
      throw new BlaineError(error.message.replaceAll(`--store ${destination.spec}`, `destination ${destination.given}`), error.exitCode);
    }
    throw unreachable(destination, `holds no volume archive or cannot be reached (${errorMessage(error)})`);
  }
  try {
    const text = await store.getMetaDoc(ARCHIVE_DOC);
    if (text === undefined && deleting) return store;
    if (text === undefined) throw unreachable(destination, "holds no volume archive (is its disk mounted?)");
    const there = parseArchiveDoc(text, `destination ${destination.given}`);
    if (there.uid !== archive.uid) {
      throw new BlaineError(`destination ${destination.given} holds another volume archive (${there.uid}), not this catalog's (${archive.uid})`, ExitCode.usage);
    }
    return store;
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
}
