import { closeSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { crashPoint } from "../crash-point.ts";
import { BlaineError, ExitCode, errnoCode } from "../errors.ts";
import { tempBeside } from "../fs/dead-temps.ts";
import { isProcessAlive } from "../fs/process-alive.ts";

/**
 * One writer per catalog: a lock file next to it holding the writer's pid.
 * It is created with link(2), which fails if the file exists, so two runs
 * cannot both win; a lock whose pid is gone (kill -9) is taken over. The
 * file linked is a temp named by its writer (dead-temps.ts): one killed
 * between writing it and removing it leaves it, and the next taker removes it.
 */
export class CatalogLock {
  readonly path: string;
  #held = false;

  private constructor(path: string) {
    this.path = path;
  }

  static acquire(catalogPath: string): CatalogLock {
    const lock = new CatalogLock(`${catalogPath}.lock`);
    lock.#take();
    return lock;
  }

  #take(): void {
    const temp = tempBeside(this.path).path;
    const fd = openSync(temp, "w", 0o644);
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(temp, this.path);
          this.#held = true;
          crashPoint("catalog-lock-taken");
          return;
        } catch (error) {
          if (errnoCode(error) !== "EEXIST") throw error;
        }
        const holder = this.#holder();
        if (holder !== undefined && holder !== process.pid && isProcessAlive(holder)) {
          throw new BlaineError(`catalog is locked by pid ${holder} (${this.path})`, ExitCode.failure);
        }
        // Stale: its writer died. Remove it and try again.
        try {
          unlinkSync(this.path);
        } catch (error) {
          if (errnoCode(error) !== "ENOENT") throw error;
        }
      }
      throw new BlaineError(`could not take the catalog lock ${this.path}`);
    } finally {
      unlinkSync(temp);
    }
  }

  #holder(): number | undefined {
    return pidIn(this.path);
  }

  /** The pid of another live process holding the lock of `catalogPath` now, if any (readers then read its reading copy). */
  static liveHolder(catalogPath: string): number | undefined {
    const pid = pidIn(`${catalogPath}.lock`);
    return pid !== undefined && pid !== process.pid && isProcessAlive(pid) ? pid : undefined;
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    try {
      if (this.#holder() === process.pid) unlinkSync(this.path);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

function pidIn(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lockPath, "utf8"), 10);
    return Number.isFinite(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

