import { errnoCode } from "../errors.ts";

/** Whether a process of this pid runs on this machine (signal 0: EPERM means it runs as another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === "EPERM";
  }
}
