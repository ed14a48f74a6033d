import { $ } from "zx";

/**
 * The one place Blaine runs external programs. zx escapes every
 * interpolation, so no command line is ever glued together by hand; output
 * is captured, never echoed (it may name private paths).
 */
$.verbose = false;
$.quiet = true;

export { $ };

/** Whether a program is on PATH (for skipping, doctor, and clear errors). */
export async function hasProgram(name: string): Promise<boolean> {
  const result = await $`command -v ${name}`.nothrow();
  return result.exitCode === 0;
}
