import { lookup } from "node:dns/promises";
import { existsSync, statSync } from "node:fs";
import type { Output } from "../../commands/output.ts";
import { ExitCode, errorMessage } from "../../errors.ts";
import { resolveBlockDevice } from "../../system/block-device.ts";
import { kernelHasFileSystem } from "../../system/block-mount.ts";
import { hasDeviceMapper } from "../../system/cryptsetup.ts";
import { hasProgram } from "../../system/exec.ts";
import { hasLoopDevices } from "../../system/loop-device.ts";
import { cleanStaleChains } from "../chain.ts";
import { cifsShare, maskedConfig, type MirrorConfig } from "../config.ts";
import { keyFileProblem } from "../key.ts";

/**
 * `blaine mirror verify-environment`: whether this configuration can work
 * on this machine: tools, kernel support, the key file, the local
 * directories, the remote. Exit 1, saying what is missing, when it cannot.
 */
export interface EnvironmentCheck {
  readonly name: string;
  readonly ok: boolean;
  /** A failed required check means the configuration cannot work here. */
  readonly required: boolean;
  readonly detail: string;
}

function tool(program: string, required: boolean, hint: string): EnvironmentCheck {
  const ok = hasProgram(program);
  return { name: program, ok, required, detail: ok ? "installed" : `not installed (${hint})` };
}

export async function checkEnvironment(config: MirrorConfig): Promise<EnvironmentCheck[]> {
  const luks = config.store.encryption === "luks";
  const cifs = config.remote.type === "cifs";
  const root = process.getuid?.() === 0;
  const checks: EnvironmentCheck[] = [
    { name: "root", ok: root, required: true, detail: root ? "running as root" : "not root: mounting the remote, loop devices and btrfs needs root" },
    tool("rsync", true, "apt install rsync"),
    tool("btrfs", true, "apt install btrfs-progs"),
    tool("mkfs.btrfs", true, "apt install btrfs-progs"),
    tool("losetup", true, "apt install mount"),
    tool("blkid", !cifs, "apt install util-linux"),
    tool("cryptsetup", luks, "apt install cryptsetup-bin"),
    tool("mount.cifs", cifs, "apt install cifs-utils"),
  ];
  if (!luks) checks.push(tool("gocryptfs", true, "apt install gocryptfs"));
  const kernel = (name: string, ok: boolean, required: boolean, missing: string): EnvironmentCheck => ({ name, ok, required, detail: ok ? "supported by the kernel" : missing });
  checks.push(kernel("btrfs", kernelHasFileSystem("btrfs"), true, "the kernel has no btrfs"));
  checks.push(kernel("loop", hasLoopDevices(), true, "the kernel has no loop devices (/dev/loop-control)"));
  checks.push(kernel("device-mapper", hasDeviceMapper(), luks, luks ? "missing: LUKS stores cannot be opened here (store.encryption \"gocryptfs\" works without it)" : "missing (not needed by gocryptfs stores)"));
  checks.push(kernel("cifs", kernelHasFileSystem("cifs"), cifs, "the kernel has no cifs support"));
  if (!luks) checks.push(kernel("fuse", existsSync("/dev/fuse"), true, "/dev/fuse is missing"));
  const keyProblem = keyFileProblem(config.store.keyfile);
  checks.push({ name: "key file", ok: !keyProblem, required: true, detail: keyProblem ?? `${config.store.keyfile} (mode 0600)` });
  for (const [index, { key, directory }] of config.local.directories.entries()) {
    const ok = statSync(directory, { throwIfNoEntry: false })?.isDirectory() ?? false;
    checks.push({ name: `directory ${key}`, ok, required: true, detail: ok ? directory : `local.directories[${index}].directory: ${directory} is not a directory` });
  }
  checks.push(await remoteCheck(config));
  return checks;
}

async function remoteCheck(config: MirrorConfig): Promise<EnvironmentCheck> {
  const remote = config.remote;
  if (remote.type === "block") {
    try {
      const device = await resolveBlockDevice(remote.device);
      const ok = existsSync(device);
      return { name: "remote", ok, required: true, detail: ok ? `${remote.device} is ${device}` : `${remote.device}: ${device} does not exist` };
    } catch (error) {
      return { name: "remote", ok: false, required: true, detail: errorMessage(error) };
    }
  }
  const share = cifsShare(remote.volume);
  const host = /^\/\/([^/]+)/.exec(share)?.[1];
  if (!host) return { name: "remote", ok: false, required: true, detail: `remote.volume: ${remote.volume} names no host (//host/share)` };
  try {
    const { address } = await lookup(host);
    return { name: "remote", ok: true, required: true, detail: `${host} is ${address} (the share itself is checked when mounted)` };
  } catch {
    return { name: "remote", ok: false, required: true, detail: `${host} (remote.volume) does not resolve` };
  }
}

export async function verifyEnvironment(config: MirrorConfig, output: Output): Promise<number> {
  const cleaned = await cleanStaleChains();
  if (cleaned > 0) output.say(`Took down what ${cleaned} killed mirror command(s) had left mounted.`);
  const checks = await checkEnvironment(config);
  output.say(`Configuration ${config.file}: valid (${config.remote.type} remote, ${config.store.encryption} store, ${config.local.directories.length} directories).`);
  for (const check of checks) output.say(`${check.ok ? "ok     " : check.required ? "MISSING" : "absent "} ${check.name}: ${check.detail}`);
  const failed = checks.filter((check) => !check.ok && check.required);
  if (failed.length > 0) output.say(`This configuration cannot work here: ${failed.map((check) => check.name).join(", ")}.`);
  else output.say("This configuration can work here.");
  output.result({ config: maskedConfig(config), checks, ok: failed.length === 0 });
  return failed.length > 0 ? ExitCode.failure : ExitCode.ok;
}
