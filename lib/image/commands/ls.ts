import { ExitCode } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import { formatBytes } from "../../size.ts";
import type { VersionRow } from "../catalog/image-catalog.ts";
import type { ImageSettings } from "../settings.ts";
import { openImageStore, withCatalog } from "./open-image.ts";
import { versionsFromStore } from "./version-source.ts";

/** What `ls --json` lists per version. */
export function versionListing(version: VersionRow) {
  return {
    date: new Date(version.date).toISOString(),
    name: version.name,
    snapshot: version.snapshot,
    size: version.size,
    blockSize: version.blockSize,
    uid: version.uid,
    status: version.status,
    protected: version.protected,
    labels: version.labels,
    baseUid: version.baseUid,
    bytesRead: version.bytesRead,
    bytesWritten: version.bytesWritten,
    bytesDeduplicated: version.bytesDeduplicated,
    bytesSparse: version.bytesSparse,
  };
}

/** `blaine image ls [NAME]`: backy's table; without a catalog, the versions the store keeps. */
export async function listImageVersions(settings: ImageSettings, name: string | undefined, output: Output): Promise<ExitCode> {
  const versions = settings.db
    ? await withCatalog(settings, false, (catalog) => catalog.versions(name))
    : (await versionsFromStore(await openImageStore(settings, { create: false }))).filter((version) => !name || version.name === name);
  if (!output.json) {
    const rows = versions.map((v) => [
      new Date(v.date).toISOString().replace("T", " ").slice(0, 19),
      v.name,
      v.snapshot,
      formatBytes(v.size),
      v.uid,
      v.status,
      v.protected ? "yes" : "no",
    ]);
    const head = ["date", "name", "snapshot", "size", "uid", "status", "protected"];
    const widths = head.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
    const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd();
    output.say(line(head));
    for (const row of rows) output.say(line(row));
    if (!settings.db) output.say(`(from the store ${settings.store}: no catalog given)`);
  }
  output.result({ versions: versions.map(versionListing) });
  return ExitCode.ok;
}
