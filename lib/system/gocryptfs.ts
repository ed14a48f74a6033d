import { existsSync } from "node:fs";
import { join } from "node:path";
import { BlaineError } from "../errors.ts";
import { lastLines, type CipherTool } from "./cipher-tool.ts";
import { hasProgram, zx } from "./exec.ts";

/** gocryptfs' exit code for "password incorrect" (documented in its man page). */
const WRONG_PASSWORD = 12;

/**
 * gocryptfs reads the password from stdin when stdin is not a terminal;
 * only its first line counts. It daemonises once the mount is up.
 */
export const gocryptfs: CipherTool = {
  name: "gocryptfs",
  program: "gocryptfs",
  isInitialised: (cipherDir) => existsSync(join(cipherDir, "gocryptfs.conf")),
  async init(cipherDir, password) {
    const $ = await zx();
    const result = await $({ input: `${password}\n` })`gocryptfs -init -q ${cipherDir}`.nothrow();
    if (result.exitCode !== 0) throw new BlaineError(`gocryptfs -init ${cipherDir} failed: ${lastLines(result.stderr)}`);
  },
  async mount(cipherDir, mountpoint, password, options) {
    const $ = await zx();
    const flags = ["-q", "-fsname", options.fsname, ...(options.readonly ? ["-ro"] : [])];
    // Detached, like securefs: Ctrl-C at the terminal is for blaine, not for the daemon.
    const result = await $({ input: `${password}\n`, detached: true })`gocryptfs ${flags} ${cipherDir} ${mountpoint}`.nothrow();
    if (result.exitCode === WRONG_PASSWORD) return "wrong-key";
    if (result.exitCode !== 0) throw new BlaineError(`gocryptfs could not mount ${cipherDir}: ${lastLines(result.stderr)}`);
    return "mounted";
  },
  async version() {
    if (!hasProgram("gocryptfs")) return undefined;
    const $ = await zx();
    const result = await $`gocryptfs -version`.nothrow();
    return /gocryptfs v?([\d.]+)/.exec(result.stdout)?.[1] ?? result.stdout.trim();
  },
};
