import { BlaineError, ExitCode } from "../errors.ts";
import { lastLines } from "./cipher-tool.ts";
import { hasDeviceMapper } from "./cryptsetup.ts";
import { hasProgram, zx } from "./exec.ts";

/**
 * LVM thin volumes: snapshots (lvcreate -s), their thin device ids (lvs),
 * the pool's metadata snapshot (dmsetup message … reserve_metadata_snap /
 * release_metadata_snap) and thin_delta between two thin devices on it.
 * Every one needs the kernel's device-mapper; without it each says so and
 * the command exits 2.
 */
export const NO_DEVICE_MAPPER_LVM =
  "this kernel has no device-mapper, so LVM thin volumes cannot be snapshotted or compared here (lvcreate, dmsetup and thin_delta on a live pool need it); use a machine with device-mapper (modprobe dm_mod), or a directory of image files on btrfs or XFS as --source";

export function requireLvm(): void {
  if (!hasDeviceMapper()) throw new BlaineError(NO_DEVICE_MAPPER_LVM, ExitCode.usage);
  for (const program of ["lvcreate", "lvs", "dmsetup", "thin_delta"]) {
    if (!hasProgram(program)) throw new BlaineError(`${program} is not installed (Debian packages lvm2 and thin-provisioning-tools): LVM thin volumes need it`, ExitCode.usage);
  }
}

async function run(args: readonly string[], what: string): Promise<string> {
  requireLvm();
  const $ = await zx();
  const [program, ...rest] = args;
  const result = await $`${program} ${rest}`.nothrow();
  if (result.exitCode !== 0) {
    if (/device-mapper/i.test(result.stderr)) throw new BlaineError(NO_DEVICE_MAPPER_LVM, ExitCode.usage);
    throw new BlaineError(`${what}: ${lastLines(result.stderr)}`);
  }
  return result.stdout;
}

/** Whether the logical volume vg/name exists. */
export async function logicalVolumeExists(vg: string, name: string): Promise<boolean> {
  requireLvm();
  const $ = await zx();
  return (await $`lvs --noheadings ${`${vg}/${name}`}`.nothrow()).exitCode === 0;
}

/** A thin snapshot `snapshot` of vg/origin, activated (thin snapshots skip activation by default). */
export async function createThinSnapshot(vg: string, origin: string, snapshot: string): Promise<void> {
  await run(["lvcreate", "-qq", "-kn", "-ay", "-s", `${vg}/${origin}`, "-n", snapshot], `could not snapshot ${vg}/${origin} as ${snapshot}`);
}

export async function removeLogicalVolume(vg: string, name: string): Promise<void> {
  await run(["lvremove", "-qq", "-f", `${vg}/${name}`], `could not remove ${vg}/${name}`);
}

export async function renameLogicalVolume(vg: string, from: string, to: string): Promise<void> {
  await run(["lvrename", "-qq", vg, from, to], `could not rename ${vg}/${from} to ${to}`);
}

/** The thin device id of vg/name and its size in bytes. */
export async function thinVolumeInfo(vg: string, name: string): Promise<{ thinId: number; size: number }> {
  const out = await run(["lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "thin_id,lv_size", `${vg}/${name}`], `could not read ${vg}/${name}`);
  const [thinId, size] = out.trim().split(/\s+/).map(Number);
  if (!Number.isInteger(thinId) || !Number.isInteger(size)) throw new BlaineError(`${vg}/${name} is not a thin volume (lvs says "${out.trim()}")`, ExitCode.usage);
  return { thinId: thinId!, size: size! };
}

/**
 * thin_delta between two thin devices of vg/pool, on a reserved metadata
 * snapshot of the live pool (released whatever happens).
 */
export async function thinDelta(vg: string, pool: string, thin1: number, thin2: number): Promise<string> {
  const dmName = `${vg.replaceAll("-", "--")}-${pool.replaceAll("-", "--")}`;
  await run(["dmsetup", "message", `${dmName}-tpool`, "0", "reserve_metadata_snap"], `could not reserve a metadata snapshot of ${vg}/${pool}`);
  try {
    return await run(["thin_delta", "-m", `--thin1=${thin1}`, `--thin2=${thin2}`, `/dev/mapper/${dmName}_tmeta`], `thin_delta on ${vg}/${pool}`);
  } finally {
    await run(["dmsetup", "message", `${dmName}-tpool`, "0", "release_metadata_snap"], `could not release the metadata snapshot of ${vg}/${pool}`);
  }
}

/** thin_delta of a metadata file (no live pool, no device-mapper): what the tests run on thin_restore's output. */
export async function thinDeltaOfFile(metadata: string, thin1: number, thin2: number): Promise<string> {
  const $ = await zx();
  const result = await $`thin_delta ${`--thin1=${thin1}`} ${`--thin2=${thin2}`} ${metadata}`.nothrow();
  if (result.exitCode !== 0) throw new BlaineError(`thin_delta ${metadata}: ${lastLines(result.stderr)}`);
  return result.stdout;
}
