import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BlaineError } from "../errors.ts";
import { writeFileAtomic } from "../fs/atomic.ts";
import type { KeyState } from "./rotation.ts";

/**
 * The store's memory between backups, per directory key: when the backup
 * the live subvolume holds completed, and where the rotation period runs
 * from (see planRotation). One small JSON file at the top of the store's
 * btrfs, beside the subvolumes rather than in them (rsync --delete would
 * remove it, and with gocryptfs a subvolume holds only ciphertext),
 * replaced atomically, so a kill leaves the old state or the new one.
 * It holds dates and key names, which the snapshot names show already.
 */
export const STATE_FILE = "mirror-state.json";

type StoredState = Record<string, { completed?: string; rotated?: string }>;

export class MirrorState {
  readonly #path: string;
  #keys: StoredState;

  private constructor(path: string, keys: StoredState) {
    this.#path = path;
    this.#keys = keys;
  }

  /** The state of a mounted store (`root` is btrfs' mountpoint); empty for a store never backed up. */
  static read(root: string, storeName: string): MirrorState {
    const path = join(root, STATE_FILE);
    if (!existsSync(path)) return new MirrorState(path, {});
    let keys: unknown;
    try {
      keys = JSON.parse(readFileSync(path, "utf8")).keys;
    } catch {
      keys = undefined;
    }
    if (typeof keys !== "object" || keys === null) throw new BlaineError(`the store ${storeName}: ${STATE_FILE} is not Blaine's state file (remove it to start the rotation period over)`);
    return new MirrorState(path, keys as StoredState);
  }

  of(key: string): KeyState {
    const stored = this.#keys[key] ?? {};
    return {
      ...(stored.completed ? { completed: new Date(stored.completed) } : {}),
      ...(stored.rotated ? { rotated: new Date(stored.rotated) } : {}),
    };
  }

  /** Records a key's state durably before the caller goes on. */
  set(key: string, state: KeyState): void {
    this.#keys = {
      ...this.#keys,
      [key]: {
        ...(state.completed ? { completed: state.completed.toISOString() } : {}),
        ...(state.rotated ? { rotated: state.rotated.toISOString() } : {}),
      },
    };
    writeFileAtomic(this.#path, `${JSON.stringify({ keys: this.#keys }, null, 2)}\n`, 0o600);
  }
}
