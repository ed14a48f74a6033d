import type { Shell } from "zx";

/**
 * The one place Blaine runs external programs. zx escapes every
 * interpolation, so no command line is ever glued together by hand; output
 * is captured, never echoed (it may name private paths). zx is loaded on
 * first use: it costs more start-up time than the rest of Blaine.
 */
let shell: Shell | undefined;

export async function zx(): Promise<Shell> {
  if (!shell) {
    const { $ } = await import("zx");
    $.verbose = false;
    $.quiet = true;
    shell = $;
  }
  return shell;
}

/** Whether a program is on PATH (for skipping, doctor, and clear errors). */
export function hasProgram(name: string): boolean {
  return Bun.which(name) !== null;
}
