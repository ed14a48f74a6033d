import type { Shell } from "zx";
import { PASSWORD_VARIABLE } from "../secrets/key-source.ts";

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
    // No child (dc3dd, par2, rsync, the cipher tools…) ever sees the password variable.
    $.env = childEnvironment();
    shell = $;
  }
  return shell;
}

/** Whether a program is on PATH (for skipping, doctor, and clear errors). */
export function hasProgram(name: string): boolean {
  return Bun.which(name) !== null;
}

/** The environment children get: Blaine's own, less the password variable. */
export function childEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && key !== PASSWORD_VARIABLE) env[key] = value;
  }
  return env;
}
