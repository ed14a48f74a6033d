import { resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { globToRegExp, hasGlobMagic } from "../../glob.ts";
import type { ArchiveCatalog } from "./archive-catalog.ts";
import { childPrefix } from "../../catalog/path-order.ts";
import type { HostFileRow } from "./records.ts";
import { textFromReadable } from "../../fs/byte-names.ts";

/**
 * Archived files matching PATH arguments, in path order: an exact archived
 * path, a directory (everything under it), or a glob (`*` within a name,
 * `**` across directories). No arguments means everything. A name that is
 * not UTF-8 may be typed as human output shows it (`\xFF`, see quotedPath).
 */
export function* selectFiles(catalog: ArchiveCatalog, patterns: readonly string[]): Generator<HostFileRow> {
  if (patterns.length === 0) {
    yield* catalog.files.all();
    return;
  }
  const globs: RegExp[] = [];
  const prefixes: string[] = [];
  const anyUnder = (path: string) => catalog.files.anyAtOrUnder(path, `${path}/`);
  for (const pattern of patterns) {
    if (pattern === "") throw new UsageError("an empty PATH matches nothing");
    const absolute = pattern.startsWith("/") || pattern.startsWith("*") ? pattern : resolve(pattern);
    const typed = absolute.length > 1 && absolute.endsWith("/") ? absolute.slice(0, -1) : absolute;
    const literal = archivedFormOf(typed, anyUnder);
    // A name may really contain "*" or "[": an archived path is taken literally first.
    if (hasGlobMagic(absolute) && !anyUnder(literal)) {
      globs.push(globToRegExp(absolute));
      // Typed with `\xFF` as human output shows a byte: the glob matches that byte too.
      const withBytes = textFromReadable(absolute);
      if (withBytes !== absolute) globs.push(globToRegExp(withBytes));
    } else prefixes.push(literal);
  }
  const emitted = new Set<string>();
  for (const prefix of prefixes) {
    for (const row of catalog.files.atOrUnder(prefix, childPrefix(prefix))) {
      if (patterns.length > 1) {
        if (emitted.has(row.path)) continue;
        emitted.add(row.path);
      }
      yield row;
    }
  }
  if (globs.length === 0) return;
  for (const row of catalog.files.all()) {
    if (!globs.some((glob) => glob.test(row.path)) || emitted.has(row.path)) continue;
    // A glob that names a directory means everything under it, like a plain path.
    yield row;
  }
}

/** `typed` when something is archived at or under it, else its reading with `\xFF` bytes if that is. */
function archivedFormOf(typed: string, isArchived: (path: string) => boolean): string {
  const withBytes = textFromReadable(typed);
  return withBytes === typed || isArchived(typed) || !isArchived(withBytes) ? typed : withBytes;
}
