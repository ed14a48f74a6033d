import { rmSync } from "node:fs";
import { join } from "node:path";
import { BlaineError, ExitCode } from "../errors.ts";
import { writeFileAtomic } from "../fs/atomic.ts";
import { kernelHasFileSystem, mountKernel } from "./block-mount.ts";
import { hasProgram } from "./exec.ts";

/**
 * CIFS/SMB shares through mount.cifs. The password reaches mount.cifs in a
 * credentials file (0600, in a private directory, removed once the mount is
 * up), never in argv, where any user could read it in /proc.
 */
export interface CifsShare {
  /** `//host/share`. */
  readonly share: string;
  readonly username: string;
  readonly password: string;
  /** Extra `-o` options. */
  readonly options?: string;
}

/** mount.cifs' credentials file: `username=` and `password=` lines. */
export function credentialsText(share: Pick<CifsShare, "username" | "password">): string {
  if (/[\n\r]/.test(share.username) || /[\n\r]/.test(share.password)) throw new BlaineError("a CIFS username or password cannot hold a line break", ExitCode.usage);
  return `username=${share.username}\npassword=${share.password}\n`;
}

/** The -o options of a CIFS mount: the credentials file, never the password itself. */
export function cifsMountOptions(credentialsFile: string, options?: string): string {
  return [`credentials=${credentialsFile}`, "uid=0", "gid=0", "file_mode=0600", "dir_mode=0700", ...(options ? [options] : [])].join(",");
}

/** The TCP port mount.cifs will use: `port=N` among the extra options, else SMB's 445. */
export function cifsPort(options?: string): number {
  const port = /(?:^|,)port=(\d+)(?:,|$)/.exec(options ?? "")?.[1];
  return port ? Number(port) : 445;
}

/** Why a CIFS share cannot be mounted here, or undefined. */
export function cifsMissing(): string | undefined {
  if (!kernelHasFileSystem("cifs")) return "this kernel has no cifs support (not in /proc/filesystems, no cifs module)";
  if (!hasProgram("mount.cifs")) return "mount.cifs is not installed (Debian: apt install cifs-utils)";
  return undefined;
}

/** Where mountCifs writes the credentials in `privateDir`; a run killed meanwhile leaves it there for the next one to remove. */
export function cifsCredentialsFile(privateDir: string): string {
  return join(privateDir, "cifs-credentials");
}

/** Mounts a share at `target`; the credentials file lives in `privateDir` (0700) only while mount.cifs reads it. */
export async function mountCifs(share: CifsShare, target: string, privateDir: string, options: { readonly readonly?: boolean } = {}): Promise<void> {
  const missing = cifsMissing();
  if (missing) throw new BlaineError(`cannot mount ${share.share}: ${missing}`, ExitCode.usage);
  const credentials = cifsCredentialsFile(privateDir);
  writeFileAtomic(credentials, credentialsText(share), 0o600);
  try {
    await mountKernel(share.share, target, { type: "cifs", readonly: options.readonly, options: cifsMountOptions(credentials, share.options) }, share.share);
  } finally {
    rmSync(credentials, { force: true });
  }
}
