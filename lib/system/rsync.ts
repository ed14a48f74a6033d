import { BlaineError } from "../errors.ts";
import { lastLines } from "./cipher-tool.ts";
import { zx } from "./exec.ts";

/**
 * rsync as a mirror copier: archive mode with hardlinks, ACLs and xattrs,
 * deletions, the exclude patterns given, and its --stats read back.
 */
export interface RsyncSummary {
  readonly filesTransferred: number;
  readonly bytesSent: number;
  readonly totalFileBytes: number;
}

export interface RsyncOptions {
  readonly exclude?: readonly string[];
  readonly signal?: AbortSignal;
  /** Called with rsync's progress line as it changes (`\r`-rewritten, ended by `\n`; a terminal shows it); undefined runs quietly. */
  readonly onProgress?: (chunk: string) => void;
}

export function rsyncArguments(source: string, target: string, options: Pick<RsyncOptions, "exclude" | "onProgress">): string[] {
  return [
    "-aHAX",
    "--delete",
    "--numeric-ids",
    "--stats",
    ...(options.onProgress ? ["--info=progress2"] : []),
    ...(options.exclude ?? []).map((pattern) => `--exclude=${pattern}`),
    `${source.replace(/\/+$/, "")}/`,
    `${target.replace(/\/+$/, "")}/`,
  ];
}

function statNumber(stats: string, label: string): number {
  const match = new RegExp(`^${label}: ([\\d,]+)`, "m").exec(stats);
  return match ? Number(match[1].replaceAll(",", "")) : 0;
}

export async function rsyncMirror(source: string, target: string, options: RsyncOptions = {}): Promise<RsyncSummary> {
  const $ = await zx();
  const child = $({ signal: options.signal })`rsync ${rsyncArguments(source, target, options)}`.nothrow();
  if (options.onProgress) {
    // --info=progress2 rewrites one line with \r and ends it with the first \n; the --stats
    // block after it is read back below, not shown (the caller prints its own summary).
    let progressEnded = false;
    child.stdout.on("data", (chunk: Buffer) => {
      if (progressEnded) return;
      const text = chunk.toString();
      const end = text.indexOf("\n");
      if (end >= 0) progressEnded = true;
      options.onProgress?.(end >= 0 ? text.slice(0, end + 1) : text);
    });
  }
  const result = await child;
  if (options.signal?.aborted) throw new BlaineError(`rsync of ${source} was interrupted`);
  // 24: files vanished while rsync ran (a live source); the rest was copied.
  if (result.exitCode !== 0 && result.exitCode !== 24) throw new BlaineError(`rsync ${source} failed (exit ${result.exitCode}): ${lastLines(result.stderr)}`);
  return {
    filesTransferred: statNumber(result.stdout, "Number of regular files transferred"),
    bytesSent: statNumber(result.stdout, "Total bytes sent"),
    totalFileBytes: statNumber(result.stdout, "Total file size"),
  };
}

/** Copies a file or directory (as itself, not its content) into `targetDir`, keeping hardlinks, ACLs, xattrs; deletes nothing. */
export async function rsyncCopy(source: string, targetDir: string, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
  const $ = await zx();
  const result = await $({ signal: options.signal })`rsync -aHAX --numeric-ids ${source.replace(/\/+$/, "")} ${`${targetDir.replace(/\/+$/, "")}/`}`.nothrow();
  if (result.exitCode !== 0) throw new BlaineError(`rsync ${source} to ${targetDir} failed (exit ${result.exitCode}): ${lastLines(result.stderr)}`);
}
