import { lookup } from "node:dns/promises";
import { existsSync, statSync } from "node:fs";
import { connect } from "node:net";
import type { Output } from "../../cli/output.ts";
import { BlaineError, ExitCode, errorMessage } from "../../errors.ts";
import { resolveBlockDevice } from "../../system/block-device.ts";
import { kernelHasFileSystem } from "../../system/block-mount.ts";
import { hasDeviceMapper } from "../../system/cryptsetup.ts";
import { cifsPort } from "../../system/cifs.ts";
import { hasProgram } from "../../system/exec.ts";
import { hasLoopDevices } from "../../system/loop-device.ts";
import { cleanStaleChains } from "../chain.ts";
import { cifsShare, loadMirrorConfig, maskedConfig, type MirrorConfig } from "../config.ts";
import { keyFileProblem } from "../key.ts";

/**
 * `blaine mirror verify-environment`: whether this configuration can work
 * on this machine: tools, kernel support, the key file, the local
 * directories, the remote. Exit 1, saying what is missing, when it cannot;
 * an invalid configuration is one such thing (the tools are still checked,
 * so one run tells everything).
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

/**
 * The checks for a configuration, or (`undefined`: it is invalid) those
 * that need none: then what only some stores need is reported, not required.
 */
export async function checkEnvironment(config: MirrorConfig | undefined): Promise<EnvironmentCheck[]> {
  const luks = config?.store.encryption === "luks";
  const gocryptfs = config?.store.encryption === "gocryptfs";
  const cifs = config?.remote.type === "cifs";
  const block = config?.remote.type === "block";
  const root = process.getuid?.() === 0;
  const checks: EnvironmentCheck[] = [
    { name: "root", ok: root, required: true, detail: root ? "running as root" : "not root: mounting the remote, loop devices and btrfs needs root" },
    tool("rsync", true, "apt install rsync"),
    tool("btrfs", true, "apt install btrfs-progs"),
    tool("mkfs.btrfs", true, "apt install btrfs-progs"),
    tool("losetup", true, "apt install mount"),
    tool("blkid", block, "apt install util-linux"),
    tool("cryptsetup", luks, "apt install cryptsetup-bin"),
    tool("mount.cifs", cifs, "apt install cifs-utils"),
  ];
  if (!luks) checks.push(tool("gocryptfs", gocryptfs, "apt install gocryptfs"));
  const kernel = (name: string, ok: boolean, required: boolean, missing: string): EnvironmentCheck => ({ name, ok, required, detail: ok ? "supported by the kernel" : missing });
  checks.push(kernel("btrfs", kernelHasFileSystem("btrfs"), true, "the kernel has no btrfs"));
  checks.push(kernel("loop", hasLoopDevices(), true, "the kernel has no loop devices (/dev/loop-control)"));
  checks.push(kernel("device-mapper", hasDeviceMapper(), luks, gocryptfs ? "missing (not needed by gocryptfs stores)" : "missing: LUKS stores cannot be opened here (store.encryption \"gocryptfs\" works without it)"));
  checks.push(kernel("cifs", kernelHasFileSystem("cifs"), cifs, "the kernel has no cifs support"));
  if (!luks) checks.push(kernel("fuse", existsSync("/dev/fuse"), gocryptfs, "/dev/fuse is missing"));
  if (!config) return checks;
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
  let address: string;
  try {
    address = (await lookup(host)).address;
  } catch {
    return { name: "remote", ok: false, required: true, detail: `${host} (remote.volume) does not resolve` };
  }
  const port = cifsPort(remote.options);
  const problem = await tcpProblem(address, port);
  return problem
    ? { name: "remote", ok: false, required: true, detail: `${host} (${address}) does not answer on port ${port}: ${problem}` }
    : { name: "remote", ok: true, required: true, detail: `${host} (${address}) answers on port ${port} (the share and credentials are checked when mounted)` };
}

/** Why a TCP connection to the NAS fails, or undefined when it connects (within 5 s: a NAS on the LAN answers in far less). */
function tcpProblem(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 5_000 });
    socket.once("connect", () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve("no answer within 5 s");
    });
    socket.once("error", (error) => resolve(errorMessage(error)));
  });
}

/** `file`: the --config given; an invalid configuration is reported as a failed check, not a usage error. */
export async function verifyEnvironment(file: string | undefined, output: Output): Promise<number> {
  const cleaned = await cleanStaleChains();
  if (cleaned > 0) output.say(`Took down what ${cleaned} killed mirror command(s) had left mounted.`);
  let config: MirrorConfig | undefined;
  let configProblem: string | undefined;
  try {
    config = loadMirrorConfig(file);
  } catch (error) {
    if (!(error instanceof BlaineError) || file === undefined) throw error;
    configProblem = errorMessage(error);
  }
  const checks = [{ name: "configuration", ok: !configProblem, required: true, detail: configProblem ?? `${config!.file} is valid` }, ...(await checkEnvironment(config))];
  if (config) {
    output.say(`Configuration ${config.file} (valid; ${config.remote.type} remote, ${config.store.encryption} store, ${config.local.directories.length} directories), the password masked:`);
    for (const line of JSON.stringify(maskedConfig(config), null, 2).split("\n")) output.say(`  ${line}`);
  }
  for (const check of checks) output.say(`${check.ok ? "ok     " : check.required ? "MISSING" : "absent "} ${check.name}: ${check.detail}`);
  const failed = checks.filter((check) => !check.ok && check.required);
  if (failed.length > 0) output.say(`This configuration cannot work here: ${failed.map((check) => check.name).join(", ")}.`);
  else output.say("This configuration can work here.");
  output.result({ ...(config ? { config: maskedConfig(config) } : {}), checks, ok: failed.length === 0 });
  return failed.length > 0 ? ExitCode.failure : ExitCode.ok;
}
