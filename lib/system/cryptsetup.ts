import { existsSync, readFileSync } from "node:fs";
import { BlaineError, ExitCode } from "../errors.ts";
import { lastLines } from "./cipher-tool.ts";
import { zx } from "./exec.ts";

/**
 * cryptsetup and LUKS2. The key always comes from a key file
 * (`--key-file`), never argv or the environment. Opening a LUKS device
 * needs the kernel's device-mapper; formatting and checking a file do not.
 */
export function hasDeviceMapper(): boolean {
  // /proc/misc lists the driver only when the kernel has it; the /dev/mapper/control
  // node can exist without it (made by a package's install, as on these machines).
  try {
    return /\bdevice-mapper\b/.test(readFileSync("/proc/misc", "utf8"));
  } catch {
    return existsSync("/dev/mapper/control");
  }
}

/** Said wherever a LUKS store cannot be opened on this machine. */
export const NO_DEVICE_MAPPER =
  "this kernel has no device-mapper, so a LUKS store cannot be opened here (cryptsetup open needs it); use a machine with device-mapper (modprobe dm_mod), or store.encryption \"gocryptfs\"";

/**
 * Formats `target` (a file or device) as LUKS2 with the key file as its only
 * key. PBKDF2 at 1000 iterations: the key is 256 random bits, which no slow
 * key derivation makes stronger, and argon2's 1 GiB would not fit a NAS box.
 */
export async function luksFormat(target: string, keyfile: string): Promise<void> {
  const $ = await zx();
  const result = await $`cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file ${keyfile} ${target}`.nothrow();
  if (result.exitCode !== 0) throw new BlaineError(`cryptsetup luksFormat ${target} failed: ${lastLines(result.stderr)}`);
}

export async function isLuks(target: string): Promise<boolean> {
  const $ = await zx();
  return (await $`cryptsetup isLuks ${target}`.nothrow()).exitCode === 0;
}

/** Opens a LUKS device as /dev/mapper/NAME; exit 2 with NO_DEVICE_MAPPER where the kernel cannot. */
export async function luksOpen(target: string, name: string, keyfile: string, options: { readonly readonly?: boolean } = {}): Promise<string> {
  if (!hasDeviceMapper()) throw new BlaineError(NO_DEVICE_MAPPER, ExitCode.usage);
  const $ = await zx();
  const result = await $`cryptsetup open --type luks ${options.readonly ? ["--readonly"] : []} --key-file ${keyfile} ${target} ${name}`.nothrow();
  if (/device-mapper/i.test(result.stderr)) throw new BlaineError(NO_DEVICE_MAPPER, ExitCode.usage);
  if (result.exitCode === 2) throw new BlaineError(`the key file ${keyfile} does not open ${target}`);
  if (result.exitCode !== 0) throw new BlaineError(`cryptsetup open ${target} failed: ${lastLines(result.stderr)}`);
  return `/dev/mapper/${name}`;
}

export async function luksClose(name: string): Promise<void> {
  if (!existsSync(`/dev/mapper/${name}`)) return;
  const $ = await zx();
  const result = await $`cryptsetup close ${name}`.nothrow();
  if (result.exitCode !== 0 && existsSync(`/dev/mapper/${name}`)) throw new BlaineError(`cryptsetup close ${name} failed: ${lastLines(result.stderr)}`);
}
