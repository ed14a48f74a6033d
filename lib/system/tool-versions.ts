import { hasProgram, zx } from "./exec.ts";
import { FUSERMOUNT } from "./fuse-mount.ts";
import { gocryptfs } from "./gocryptfs.ts";
import { securefs } from "./securefs.ts";

/** An external program Blaine can use, and what is lost without it. */
export interface ExternalTool {
  readonly name: string;
  readonly program: string;
  /** Debian package that provides it (empty when it is not packaged). */
  readonly install: string;
  readonly disables: string;
  version(): Promise<string | undefined>;
}

/** Runs `program args…` and takes the version from the first match of `pattern` in its output. */
function versionFrom(program: string, args: readonly string[], pattern: RegExp): () => Promise<string | undefined> {
  return async () => {
    if (!hasProgram(program)) return undefined;
    const $ = await zx();
    const result = await $`${program} ${args}`.nothrow();
    const text = `${result.stdout}\n${result.stderr}`;
    return pattern.exec(text)?.[1] ?? (text.trim().split("\n")[0] || "unknown");
  };
}

export const EXTERNAL_TOOLS: readonly ExternalTool[] = [
  { name: "dc3dd", program: "dc3dd", install: "apt-get install dc3dd", disables: "--copier dc3dd", version: versionFrom("dc3dd", ["--version"], /dc3dd\)?\s+([\d.]+)/) },
  { name: "par2", program: "par2", install: "apt-get install par2", disables: "parity with --parity-engine par2", version: versionFrom("par2", ["--version"], /version ([\d.]+)/) },
  { name: "parpar", program: "parpar", install: "npm install -g @animetosho/parpar", disables: "parity with --parity-engine parpar (faster PAR2 creation)", version: versionFrom("parpar", ["--version"], /([\d]+\.[\d.]+)/) },
  { name: "gocryptfs", program: "gocryptfs", install: "apt-get install gocryptfs", disables: "encrypted disks with --encrypt gocryptfs", version: () => gocryptfs.version() },
  { name: "securefs", program: "securefs", install: "apt-get install securefs", disables: "encrypted disks with --encrypt securefs", version: () => securefs.version() },
  { name: "fusermount", program: FUSERMOUNT, install: "apt-get install fuse3", disables: "unmounting encrypted disks (and so encryption altogether)", version: versionFrom(FUSERMOUNT, ["--version"], /version:?\s*([\d.]+)/) },
  { name: "ssh", program: "ssh", install: "apt-get install openssh-client", disables: "ssh:// image stores (unless BLAINE_SSH_COMMAND names another program)", version: versionFrom("ssh", ["-V"], /OpenSSH_([\w.]+)/) },
  { name: "rsync", program: "rsync", install: "apt-get install rsync", disables: "the rsync comparison in the benchmarks", version: versionFrom("rsync", ["--version"], /version\s+([\d.]+)/) },
];

/** "PROGRAM is not installed (how to install it)", from the one table of external tools. */
export function notInstalled(program: string): string {
  const install = EXTERNAL_TOOLS.find((tool) => tool.program === program)?.install;
  return `${program} is not installed${install ? ` (${install})` : ""}`;
}
