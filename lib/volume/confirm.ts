import { BlaineError, ExitCode } from "../errors.ts";

/**
 * Asks before destroying (delete, arch-delete): "yes" at a terminal, or
 * -u/--unattended. A script without -u is refused, never assumed to agree.
 */
export function confirm(question: string, unattended: boolean): void {
  if (unattended) return;
  if (!process.stdin.isTTY) throw new BlaineError(`${question} — this asks for confirmation: give -u (--unattended) to run it without a terminal`, ExitCode.usage);
  const answer = prompt(`${question} Type yes to go on:`);
  if (answer?.trim().toLowerCase() !== "yes") throw new BlaineError("nothing was changed (not confirmed)", ExitCode.usage);
}
