import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blaine } from "./helpers/cli.ts";
import { tempDir } from "./helpers/fixture.ts";
import { cipherMissing } from "./helpers/mounts.ts";

setDefaultTimeout(120_000);

let dir: ReturnType<typeof tempDir> | undefined;
afterEach(() => dir?.cleanup());

function mountedAt(mountpoint: string): boolean {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((line) => line.split(" ")[4] === mountpoint);
}

/** Field 22 of /proc/PID/stat, as mount records keep it to tell a live owner from a reused pid. */
function processStart(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

describe("blaine unmount", () => {
  test("takes --config, --db and --dest like every command", async () => {
    dir = tempDir();
    const target = join(dir.path, "not-mounted");
    const result = await blaine(["unmount", target, "--config", join(dir.path, "blaine.toml"), "--db", join(dir.path, "c.db"), "--dest", join(dir.path, "d")]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe(`blaine: ${target} is not mounted\n`);
  });

  test.skipIf(cipherMissing("gocryptfs") !== undefined)("refuses the private mount of a command that is still running; takes it down once that command is gone", async () => {
    dir = tempDir();
    const runDir = join(dir.path, "run");
    const env = { BLAINE_RUN_DIR: runDir };
    const db = join(dir.path, "catalog.db");
    const disk = join(dir.path, "disk");
    const keyfile = join(dir.path, "key");
    writeFileSync(keyfile, "unmount test password\n");
    expect((await blaine(["disk", "init", disk, "--label", "E", "--db", db, "--encrypt", "gocryptfs", "--keyfile", keyfile], { env })).exitCode).toBe(0);
    const mountpoint = join(dir.path, "mnt");
    expect((await blaine(["mount", disk, mountpoint, "--keyfile", keyfile], { env })).exitCode).toBe(0);
    // The record says what a running command's record says: a command mount whose owner (this test process) is alive.
    const [recordFile] = readdirSync(runDir).filter((name) => name.endsWith(".json"));
    const record = JSON.parse(readFileSync(join(runDir, recordFile), "utf8"));
    writeFileSync(join(runDir, recordFile), JSON.stringify({ ...record, purpose: "command", pid: process.pid, pidStart: processStart(process.pid) }));

    const refused = await blaine(["unmount", mountpoint], { env });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(`${mountpoint} belongs to a running blaine command (pid ${process.pid}, disk "E")`);
    expect(mountedAt(mountpoint)).toBe(true);

    // The same record once its command has died: a stale mount, which unmount may take down.
    const gone = Bun.spawn(["true"]);
    await gone.exited;
    writeFileSync(join(runDir, recordFile), JSON.stringify({ ...record, purpose: "command", pid: gone.pid, pidStart: "1" }));
    const taken = await blaine(["unmount", mountpoint], { env });
    expect(taken.exitCode).toBe(0);
    expect(mountedAt(mountpoint)).toBe(false);
    expect(readdirSync(runDir)).toEqual([]);
  });
});
