import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { selectFiles } from "../catalog/select-files.ts";
import { requireDb, type Settings } from "../settings.ts";
import { ExitCode, errnoCode, type ExitCode as ExitCodeValue } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import { quotedPath } from "../../fs/byte-names.ts";

/**
 * Lists archived files (all, or those matching PATH/GLOB arguments) with
 * size, mtime and disk. With --json, one object like every command's
 * (`{"files": [...]}`); rows are streamed.
 */
export function listFiles(settings: Settings, patterns: readonly string[], output: Output): ExitCodeValue {
  const catalog = ArchiveCatalog.open(requireDb(settings), { readonly: true });
  try {
    // Said on stderr: stdout holds only the listing.
    if (catalog.readingCopyNote) console.error(`blaine: note: ${catalog.readingCopyNote}`);
    // A reader that stops early (`blaine ls | head`) closes the pipe: the listing ends there, quietly, as ls(1)'s does.
    process.stdout.on("error", (error) => {
      if (errnoCode(error) !== "EPIPE") throw error;
    });
    try {
      writeListing(catalog, patterns, output);
    } catch (error) {
      if (errnoCode(error) !== "EPIPE") throw error;
    }
    return ExitCode.ok;
  } finally {
    catalog.close();
  }
}

function writeListing(catalog: ArchiveCatalog, patterns: readonly string[], output: Output): void {
  const labels = catalog.disks.labels();
  let first = true;
  if (output.json) process.stdout.write('{"files": [');
  for (const file of selectFiles(catalog, patterns)) {
    const disk = labels.get(file.diskId) ?? file.diskId;
    if (output.json) {
      const row = { path: file.path, kind: file.kind, size: file.size, mtime: new Date(file.mtimeMs).toISOString(), mode: file.mode, hash: file.hash, linkTarget: file.linkTarget, disk };
      process.stdout.write(`${first ? "\n" : ",\n"}${JSON.stringify(row)}`);
    } else {
      const when = new Date(file.mtimeMs).toISOString().slice(0, 19).replace("T", " ");
      const name = file.kind === "symlink" ? `${file.path} -> ${file.linkTarget}` : file.path;
      process.stdout.write(`${String(file.size).padStart(14)}  ${when}  ${disk.padEnd(8)}  ${quotedPath(name).slice(1, -1)}\n`);
    }
    first = false;
  }
  if (output.json) process.stdout.write(first ? "]}\n" : "\n]}\n");
}
