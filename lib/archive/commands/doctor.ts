import { accessSync, constants, existsSync, mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { checkCatalogIntegrity } from "../catalog/open.ts";
import type { Settings } from "../settings.ts";
import { readDiskLabel, type DiskLabel } from "../disk/disk-label.ts";
import { disownedFiles } from "../disk/rebuild-disk-catalog.ts";
import { diskLayout } from "../disk/layout.ts";
import { expandDiskDirectories } from "../disk/mount-disks.ts";
import { diskCatalogNaming, notADiskError } from "../disk/mounted-disk.ts";
import { cipherTool, releaseDiskMounts, unlockDisk } from "../disk/unlock.ts";
import { crashPoint } from "../../crash-point.ts";
import { scratchDirectory } from "../../fs/dead-temps.ts";
import { ExitCode, errorMessage, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { generatePassword, KeySource } from "../../secrets/key-source.ts";
import { hasDeviceMapper } from "../../system/cryptsetup.ts";
import { hasProgram } from "../../system/exec.ts";
import { mountAt, unmountFuse, waitUntilMounted } from "../../system/fuse-mount.ts";
import { cleanStaleMounts, createMountRecord, removeMountRecord } from "../../system/mount-records.ts";
import { EXTERNAL_TOOLS } from "../../system/tool-versions.ts";
import type { Output } from "../../cli/output.ts";

export interface DoctorResult {
  readonly exitCode: ExitCodeValue;
  readonly tools: readonly { name: string; installed: boolean; version: string | null; disables: string | null; install: string }[];
  readonly fuse: { readonly device: boolean; readonly mountWorks: boolean; readonly message: string };
  readonly deviceMapper: { readonly present: boolean; readonly message: string };
  readonly staleMountsCleaned: readonly string[];
  readonly catalog: { readonly path: string; readonly ok: boolean; readonly message: string } | null;
  readonly disks: readonly { readonly dir: string; readonly label: string | null; readonly encrypted: boolean; readonly ok: boolean; readonly message: string }[];
  /** Things that stop the configured archive from working (exit 1 when any). */
  readonly problems: readonly string[];
}

/**
 * `blaine doctor`: what this machine can do for Blaine. External tools and
 * their versions, whether a FUSE file system really mounts, device-mapper,
 * stale mounts of killed runs (cleaned), and the configured catalog and
 * disks (reachable, SQLite integrity). A missing optional tool only
 * disables a feature; exit 1 only when the configuration cannot work.
 */
export async function runDoctor(settings: Settings, output: Output): Promise<DoctorResult> {
  const problems: string[] = [];
  const tools = [];
  for (const tool of EXTERNAL_TOOLS) {
    const version = await tool.version();
    tools.push({ name: tool.name, installed: version !== undefined, version: version ?? null, disables: version === undefined ? tool.disables : null, install: tool.install });
  }
  if (settings.copier === "dc3dd" && !hasProgram("dc3dd")) problems.push("copier = dc3dd is configured but dc3dd is not installed: blaine run cannot copy");
  if (settings.parity !== undefined && settings.parityEngine !== "builtin" && !hasProgram(settings.parityEngine)) {
    problems.push(`parity-engine = ${settings.parityEngine} is configured but ${settings.parityEngine} is not installed: blaine run cannot make parity (install it, or use parity-engine = "builtin")`);
  }

  // Stale mounts first: a killed doctor's probe is mounted from its scratch directory, which the next probe removes.
  const staleMountsCleaned = (await cleanStaleMounts()).map((record) => `${record.mountpoint} (disk "${record.label}", pid ${record.pid})`);
  const fuse = await probeFuse();
  const deviceMapper = hasDeviceMapper()
    ? { present: true, message: "present (archive disks do not need it; LUKS mirror stores do)" }
    : { present: false, message: "absent: LUKS (dm-crypt) cannot be opened here, so mirrors need store.encryption \"gocryptfs\"; archive disks (gocryptfs, securefs over FUSE) do not need it" };

  const catalog = settings.db ? checkCatalog(settings.db, "host") : null;
  if (catalog && !catalog.ok) problems.push(`catalog ${catalog.path}: ${catalog.message}`);
  const disks: DoctorResult["disks"][number][] = [];
  const keys = new KeySource(settings.keyfiles, { interactive: false });
  // --dest must be there; `disks` globs count where a disk is mounted now.
  const directories = expandDiskDirectories(settings.dest, settings.disks);
  const present = directories.optional.filter((dir) => existsSync(diskLayout(resolve(dir)).label));
  for (const dest of [...directories.required, ...present]) {
    const disk = await checkDisk(resolve(dest), keys, fuse.mountWorks, catalog?.ok ? catalog.path : undefined);
    if (!disk.ok) problems.push(`disk ${disk.dir}: ${disk.message}`);
    if (disk.encrypted && disk.label && !tools.find((tool) => tool.name === disk.cipher)?.installed) {
      problems.push(`disk "${disk.label}" is encrypted with ${disk.cipher}, which is not installed`);
    }
    disks.push({ dir: disk.dir, label: disk.label, encrypted: disk.encrypted, ok: disk.ok, message: disk.message });
  }
  await releaseDiskMounts();

  const result: DoctorResult = {
    exitCode: problems.length > 0 ? ExitCode.failure : ExitCode.ok,
    tools,
    fuse,
    deviceMapper,
    staleMountsCleaned,
    catalog,
    disks,
    problems,
  };
  printDoctor(result, output);
  return result;
}

/** Mounts a throwaway encrypted directory for real: the only proof that FUSE works here. */
async function probeFuse(): Promise<DoctorResult["fuse"]> {
  const device = existsSync("/dev/fuse");
  if (!device) return { device, mountWorks: false, message: "/dev/fuse is missing: encrypted disks cannot be used (in Docker: --device /dev/fuse --cap-add SYS_ADMIN)" };
  try {
    accessSync("/dev/fuse", constants.R_OK | constants.W_OK);
  } catch {
    return { device, mountWorks: false, message: "/dev/fuse is not readable and writable by this user: encrypted disks cannot be used" };
  }
  const tool = [cipherTool("gocryptfs"), cipherTool("securefs")].find((candidate) => hasProgram(candidate.program));
  if (!tool) return { device, mountWorks: false, message: "no FUSE file system to try (install gocryptfs or securefs)" };
  // Named by its writer: a doctor killed now leaves it, and the next one removes it (after its stale mount is down).
  const dir = scratchDirectory("doctor");
  const cipherDir = join(dir, "cipher");
  // Recorded before it is mounted, like every mount Blaine makes: a doctor killed now leaves a stale record the next command cleans.
  const record = createMountRecord({ cipherDir, cipher: tool.name, label: "doctor", readonly: false, purpose: "command" });
  const mountpoint = record.mountpoint;
  try {
    mkdirSync(cipherDir);
    const password = generatePassword();
    await tool.init(cipherDir, password);
    const outcome = await tool.mount(cipherDir, mountpoint, password, { readonly: false, fsname: "blaine:doctor" });
    if (outcome !== "mounted") return { device, mountWorks: false, message: `${tool.name} refused its own new password` };
    await waitUntilMounted(mountpoint, 15_000);
    crashPoint("doctor-fuse-mounted");
    await unmountFuse(mountpoint, { lazy: true });
    return { device, mountWorks: true, message: `a ${tool.name} file system mounted and unmounted` };
  } catch (error) {
    return { device, mountWorks: false, message: `FUSE mount failed: ${errorMessage(error)}` };
  } finally {
    if (mountAt(mountpoint)) await unmountFuse(mountpoint, { lazy: true }).catch(() => undefined);
    removeMountRecord(record);
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkCatalog(path: string, kind: "host" | "disk", naming?: { name: string; advice: string }): { path: string; ok: boolean; message: string } {
  const advice = naming ? `; ${naming.advice}` : "";
  if (!existsSync(path)) return { path, ok: false, message: `does not exist${advice}` };
  try {
    const verdict = checkCatalogIntegrity(path, kind, { readonly: true, ...naming });
    return { path, ok: verdict === "ok", message: verdict === "ok" ? "integrity check ok" : `integrity check: ${verdict}${advice}` };
  } catch (error) {
    return { path, ok: false, message: errorMessage(error) };
  }
}

async function checkDisk(dir: string, keys: KeySource, fuseWorks: boolean, hostCatalog: string | undefined) {
  const base = { dir, label: null as string | null, encrypted: false, cipher: undefined as string | undefined };
  if (!existsSync(dir)) return { ...base, ok: false, message: "not reachable (not mounted?)" };
  // What is known of the disk so far: a failure after its label was read still names it.
  let known = base;
  try {
    const label = readDiskLabel(dir);
    if (!label) return { ...base, ok: false, message: notADiskError(dir, dir).message };
    known = { ...base, label: label.label, encrypted: Boolean(label.cipher), cipher: label.cipher };
    if (label.cipher) {
      if (!fuseWorks) return { ...known, ok: false, message: `encrypted with ${label.cipher}, but FUSE mounts do not work here` };
      if (keys.known().length === 0) return { ...known, ok: true, message: `encrypted with ${label.cipher}; give --keyfile (or BLAINE_PASSWORD) to check its catalog` };
    }
    const root = await unlockDisk(dir, label, { readonly: true, keys });
    const layout = diskLayout(root);
    const naming = diskCatalogNaming(dir, label, layout);
    const catalog = checkCatalog(layout.catalog, "disk", naming);
    // An error from opening it names the catalog already.
    const said = catalog.message.startsWith(naming.name) ? catalog.message : `disk catalog ${catalog.message}`;
    const unlocked = label.cipher ? `encrypted with ${label.cipher}, unlocked; ` : "";
    const disowned = catalog.ok && hostCatalog ? disownedBy(hostCatalog, label, layout.catalog) : undefined;
    if (disowned !== undefined) {
      return { ...known, ok: false, message: `${unlocked}${naming.name} holds none of the ${disowned} files the host catalog places on the disk (it was made anew empty); ${naming.advice}` };
    }
    return { ...known, ok: catalog.ok, message: `${unlocked}${said}` };
  } catch (error) {
    return { ...known, ok: false, message: errorMessage(error) };
  }
}

/** disownedFiles, with the host catalog opened read-only for it (undefined when it cannot be read now). */
function disownedBy(hostCatalog: string, label: DiskLabel, diskCatalog: string): number | undefined {
  try {
    const host = ArchiveCatalog.open(hostCatalog, { readonly: true });
    try {
      return disownedFiles(host, label, diskCatalog);
    } finally {
      host.close();
    }
  } catch {
    return undefined;
  }
}

function printDoctor(result: DoctorResult, output: Output): void {
  output.say("External tools:");
  for (const tool of result.tools) {
    output.say(tool.installed ? `  ok       ${tool.name} ${tool.version}` : `  MISSING  ${tool.name}: disables ${tool.disables} (${tool.install})`);
  }
  output.say(`FUSE: ${result.fuse.mountWorks ? "ok" : "NOT WORKING"}: ${result.fuse.message}`);
  output.say(`device-mapper: ${result.deviceMapper.message}`);
  if (result.staleMountsCleaned.length > 0) output.say(`Cleaned stale mounts left by killed runs: ${result.staleMountsCleaned.join(", ")}`);
  if (result.catalog) output.say(`Catalog ${result.catalog.path}: ${result.catalog.ok ? "ok" : "PROBLEM"}: ${result.catalog.message}`);
  else output.say("Catalog: none configured (--db FILE or db in blaine.toml)");
  for (const disk of result.disks) output.say(`Disk ${disk.label ? `"${disk.label}" ` : ""}${disk.dir}: ${disk.ok ? "ok" : "PROBLEM"}: ${disk.message}`);
  output.say(result.problems.length === 0 ? "Everything configured can work here." : `${result.problems.length} problem(s): ${result.problems.join("; ")}`);
  output.result(result);
}
