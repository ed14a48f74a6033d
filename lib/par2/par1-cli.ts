/**
 * `blaine par2 verify|repair SET.par` (or SET.pNN): PAR 1.0 sets, checked
 * and repaired with par2cmdline's lines and exit codes. PAR1 counts whole
 * files: each damaged or missing file needs one recovery volume
 * ("recovery files" in the lines, as par2cmdline words them).
 */
import { basename } from "node:path";
import { repairPar1 } from "./par1-repair.ts";
import { checkPar1Set, loadPar1Set, type Par1Check } from "./par1-set.ts";
import type { Output } from "../cli/output.ts";
import { Noise, Par2Exit, purgeFiles, type Say } from "./cli.ts";
import { deadTempsLine } from "./write-set.ts";

export interface Par1Request {
  readonly action: "verify" | "repair";
  readonly setPath: string;
  readonly extra: readonly string[];
  /** -B: where the set's files are (par2cmdline ignores it for PAR1 and looks beside the set). */
  readonly base?: string;
  readonly purge: boolean;
  readonly memory?: number;
}

export function verifyOrRepairPar1(request: Par1Request, out: Output, say: Say): number {
  const set = loadPar1Set(request.setPath, request.extra);
  for (const { path, reason } of set.unusable) say(`Not using "${basename(path)}": ${reason}.`);
  const check = checkPar1Set(set, { base: request.base, extra: request.extra });
  report(check, say);
  const needsRepair = check.files.some((file) => file.status !== "found");
  if (request.action === "verify" || !needsRepair) {
    out.result(summary(check));
    if (!needsRepair && request.purge) purgeFiles(set.parFiles, say);
    if (!needsRepair) return Par2Exit.ok;
    return check.repairable ? Par2Exit.repairPossible : Par2Exit.repairNotPossible;
  }
  if (!check.repairable) {
    out.result({ ...summary(check), repaired: [] });
    return Par2Exit.repairNotPossible;
  }
  const result = repairPar1(check, { memory: request.memory });
  if (result.deadTempsRemoved) say(deadTempsLine(result.deadTempsRemoved), Noise.quiet);
  if (result.failure) {
    console.error(`Repair Failed: ${result.failure}`);
    out.result({ ...summary(check), repaired: [], failure: result.failure });
    return Par2Exit.repairFailed;
  }
  // As par2cmdline re-verifies what it rebuilt: a `Target:` line for each.
  for (const file of check.files.filter((candidate) => candidate.status !== "found" && candidate.status !== "renamed")) say(`Target: "${file.entry.name}" - found.`, Noise.quiet);
  for (const path of result.repaired) say(`Repaired ${path}`, Noise.noisy);
  say("Repair complete.", Noise.quiet);
  out.result({ ...summary(check), repaired: result.repaired });
  if (request.purge) purgeFiles(set.parFiles, say);
  return Par2Exit.ok;
}

/** par2cmdline's lines for a PAR1 set, at the noise levels it prints them. */
function report(check: Par1Check, say: Say): void {
  for (const file of check.files) {
    // par2cmdline words a damaged file this way: the file is there, none of it is the set's.
    if (file.status === "damaged") say(`File: "${file.entry.name}" - no data found.`, Noise.quiet);
    else if (file.status === "missing" || file.status === "renamed") say(`Target: "${file.entry.name}" - missing.`, Noise.quiet);
    else say(`Target: "${file.entry.name}" - found.`, Noise.quiet);
  }
  for (const file of check.files) if (file.status === "renamed") say(`File: "${basename(file.source!)}" - is a match for "${file.entry.name}".`, Noise.quiet);
  for (const path of check.unmatched) say(`File: "${basename(path)}" - no data found.`, Noise.quiet);
  const count = (status: string) => check.files.filter((file) => file.status === status).length;
  const renamed = count("renamed");
  const complete = count("found");
  if (complete === check.files.length) {
    say("All files are correct, repair is not required.", Noise.quiet);
    return;
  }
  say("Repair is required.", Noise.quiet);
  if (renamed > 0) say(`${renamed} file(s) have the wrong name.`);
  if (count("missing") > 0) say(`${count("missing")} file(s) are missing.`);
  if (count("damaged") > 0) say(`${count("damaged")} file(s) exist but are damaged.`);
  if (complete > 0) say(`${complete} file(s) are ok.`);
  const volumes = check.set.volumes.length;
  if (!check.repairable) {
    say("Repair is not possible.", Noise.quiet);
    say(`You need ${check.needed - volumes} more recovery files to be able to repair.`, Noise.quiet);
    return;
  }
  say("Repair is possible.", Noise.quiet);
  if (volumes > check.needed) say(`You have an excess of ${volumes - check.needed} recovery files.`);
  if (check.needed > 0) say(`${check.needed} recovery files will be used to repair.`);
  else if (volumes > 0) say("None of the recovery files will be used for the repair.");
}

function summary(check: Par1Check) {
  return {
    setPath: check.set.setPath,
    format: "PAR 1.0",
    files: check.files.map((file) => ({ name: file.entry.name, path: file.path, status: file.status, ...(file.status === "renamed" ? { foundAs: file.source } : {}) })),
    recoveryFiles: check.set.volumes.length,
    recoveryFilesUnusable: check.set.unusable.map((file) => file.path),
    filesToRebuild: check.needed,
    repairable: check.repairable,
  };
}
