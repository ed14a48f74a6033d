import { existsSync } from "node:fs";
import { join } from "node:path";
import { BlaineError } from "../errors.ts";
import { lastLines, type CipherTool } from "./cipher-tool.ts";
import { hasProgram, zx } from "./exec.ts";

/**
 * securefs reads the password as one line from stdin when it is piped (its
 * --pass flag would put it in argv, so it is never used). `-b` forks the
 * daemon into the background once the file system is opened.
 */
export const securefs: CipherTool = {
  name: "securefs",
  program: "securefs",
  isInitialised: (cipherDir) => existsSync(join(cipherDir, ".securefs.json")),
  async init(cipherDir, password) {
    const $ = await zx();
    const result = await $({ input: `${password}\n` })`securefs create ${cipherDir}`.nothrow();
    if (result.exitCode !== 0) throw new BlaineError(`securefs create ${cipherDir} failed: ${lastLines(result.stderr)}`);
  },
  async mount(cipherDir, mountpoint, password, options) {
    const $ = await zx();
    const flags = ["-b", "--fsname", options.fsname, ...(options.readonly ? ["-o", "ro"] : [])];
    // Detached: the daemon gets a session of its own, so a Ctrl-C at the terminal reaches
    // blaine (which unmounts after saving its catalogs), not the file system under it.
    const result = await $({ input: `${password}\n`, detached: true })`securefs mount ${flags} ${cipherDir} ${mountpoint}`.nothrow();
    if (result.exitCode !== 0 && /invalid password/i.test(result.stderr)) return "wrong-key";
    if (result.exitCode !== 0) throw new BlaineError(`securefs could not mount ${cipherDir}: ${lastLines(result.stderr, 2)}`);
    return "mounted";
  },
  async version() {
    if (!hasProgram("securefs")) return undefined;
    const $ = await zx();
    // The Debian build reports "GIT-NOTFOUND" as its own version; dpkg knows better.
    const own = (await $`securefs version`.nothrow()).stdout;
    const match = /securefs (\S+)/.exec(own)?.[1];
    if (match && !/NOTFOUND/.test(match)) return match;
    const dpkg = await $`dpkg-query -W -f ${"${Version}"} securefs`.nothrow();
    return dpkg.exitCode === 0 && dpkg.stdout.trim() ? dpkg.stdout.trim() : (match ?? "unknown");
  },
};
