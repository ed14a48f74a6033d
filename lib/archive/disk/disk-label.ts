import { existsSync, readFileSync } from "node:fs";
import { BlaineError, ExitCode, errorMessage } from "../../errors.ts";
import { writeFileAtomic } from "../../fs/atomic.ts";
import { diskLayout } from "./layout.ts";

/**
 * `DIR/.blaine/disk.json`: how Blaine recognises a mounted archive disk. It
 * names the archive, the disk and this physical copy of it, and nothing of
 * the data (it stays readable when the rest of the disk is encrypted).
 */
export interface DiskLabel {
  readonly format: 1;
  readonly archiveId: string;
  readonly diskId: string;
  /** This physical drive; a disk's twin has the same diskId and another copyId. */
  readonly copyId: string;
  readonly label: string;
  readonly created: string;
  /** Set on an encrypted disk: the tool whose cipher directory (`DIR/encrypted/`) holds everything else. */
  readonly cipher?: "gocryptfs" | "securefs";
}

export function readDiskLabel(root: string): DiskLabel | undefined {
  const path = diskLayout(root).label;
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new BlaineError(`${path} is damaged: ${errorMessage(error)}`, ExitCode.failure);
  }
  const label = parsed as Partial<DiskLabel>;
  for (const key of ["archiveId", "diskId", "copyId", "label"] as const) {
    if (typeof label[key] !== "string" || label[key] === "") {
      throw new BlaineError(`${path} is damaged: "${key}" is missing`, ExitCode.failure);
    }
  }
  if (label.cipher !== undefined && label.cipher !== "gocryptfs" && label.cipher !== "securefs") {
    throw new BlaineError(`${path}: unknown cipher "${String(label.cipher)}" (this Blaine knows gocryptfs and securefs)`, ExitCode.failure);
  }
  return label as DiskLabel;
}

export function writeDiskLabel(root: string, label: DiskLabel): void {
  writeFileAtomic(diskLayout(root).label, `${JSON.stringify(label, null, 2)}\n`);
}
