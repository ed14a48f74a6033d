import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { homedir } from "node:os";
import { BlaineError, ExitCode, UsageError } from "../../errors.ts";
import { hasProgram } from "../../system/exec.ts";
import { formatBytes, parseSize } from "../../size.ts";
import { checkedFlagAnswers, checks, type InitAnswers } from "./init.ts";
import type { Flags } from "../../config.ts";

/** Where SnapRAID keeps its configuration: offered as the answer when it exists. */
const SNAPRAID_CONF = "/etc/snapraid.conf";

type Clack = typeof import("@clack/prompts");

/** Ctrl-C (or Esc) at a prompt: nothing has been written yet. */
class InitCancelled extends BlaineError {
  constructor() {
    super("blaine init cancelled: nothing was written", ExitCode.failure);
  }
}

/**
 * Asks, on the terminal, every answer not already given as a flag; each is
 * checked as it is typed, and the flags are checked the same way before the
 * first question (a bad one is a usage error naming it). Nothing is written
 * here: the caller applies the answers once all are in, so Ctrl-C at any
 * prompt leaves nothing behind.
 */
export async function promptInitAnswers(flags: Flags, configFile: string): Promise<InitAnswers> {
  const given = checkedFlagAnswers(flags);
  const clack: Clack = await import("@clack/prompts");
  const ask = async <T>(answer: Promise<T>): Promise<Exclude<T, symbol>> => {
    const value = await answer;
    if (clack.isCancel(value)) {
      clack.cancel("Cancelled: nothing was written.");
      throw new InitCancelled();
    }
    return value as Exclude<T, symbol>;
  };
  // An empty answer takes the default (shown as the placeholder), so a default is accepted with Enter alone.
  const text = (message: string, check: (value: string) => string | undefined, defaultValue?: string, placeholder?: string) =>
    ask(clack.text({ message, defaultValue, placeholder: placeholder ?? defaultValue, validate: (value) => check(value || defaultValue || "") })).then((value) =>
      String(value || defaultValue || "").trim(),
    );

  clack.intro("blaine init: set up an archive");
  if (existsSync(configFile)) {
    const replace = await ask(clack.confirm({ message: `${configFile} exists. Replace it?`, initialValue: false }));
    if (!replace) {
      clack.cancel("Left as it was: nothing was written.");
      throw new InitCancelled();
    }
  }

  const sources: string[] = [...(given.sources ?? [])];
  while (sources.length === 0 || (given.sources === undefined && (await ask(clack.confirm({ message: "Add another directory to archive?", initialValue: false }))))) {
    sources.push(resolve(await text("A directory to archive", checks.source, undefined, "/data/movies")));
  }

  let exclude = given.exclude;
  if (exclude === undefined) {
    const answer = await text("Exclude patterns, separated by spaces (empty for none)", () => undefined, "", "*.part lost+found/");
    exclude = answer.split(/\s+/).filter(Boolean);
  }
  // Asked wherever SnapRAID's file is (a pool's own, not /etc's); excludes given as flags answer the exclude questions.
  let snapraidConf = given.snapraidConf;
  if (snapraidConf === undefined && given.exclude === undefined) {
    const found = existsSync(SNAPRAID_CONF) ? SNAPRAID_CONF : "";
    const answer = await text("A SnapRAID configuration whose excludes to use too (empty for none)", checks.snapraidConf, found, found || "/etc/snapraid.conf");
    snapraidConf = answer ? resolve(answer) : undefined;
  }

  const defaultDb = process.getuid?.() === 0 ? "/var/lib/blaine/catalog.db" : join(homedir(), ".local/share/blaine/catalog.db");
  const db = given.db ?? resolve(await text("Where to keep the catalog (SQLite file)", checks.writableFile, defaultDb));
  const disk = given.disk ?? resolve(await text("The first archive disk: the directory where it is mounted", checks.disk, undefined, "/mnt/archive1"));
  // A label given as a flag with the catalog chosen here is checked against that catalog now.
  const labelTaken = given.label !== undefined && given.db === undefined ? checks.labelFree(db, given.label) : undefined;
  if (labelTaken) throw new UsageError(`--label ${given.label}: ${labelTaken}`);
  const label = given.label ?? (await text("A label for this disk (written on its sticker)", (value) => checks.label(value) ?? checks.labelFree(db, value), "A1"));
  let capacity = given.capacity;
  if (capacity === undefined) {
    // Kept in the catalog: every run fills the disk up to it and no further, and marks it full there.
    const answer = await text("Most data this disk may hold (a size such as 4T or 500G; empty for the whole disk)", checks.capacity, "", "whole disk");
    capacity = answer ? parseSize(answer, "--capacity") : undefined;
  }

  let encrypt = given.encrypt;
  if (encrypt === undefined) {
    const hint = (name: string) => (checks.cipher(name) ? `unavailable: ${checks.cipher(name)}` : undefined);
    encrypt = await ask(
      clack.select<"none" | "gocryptfs" | "securefs">({
        message: "Encrypt the disk? (for disks that leave the house)",
        options: [
          { value: "none", label: "No encryption" },
          { value: "gocryptfs", label: "gocryptfs", hint: hint("gocryptfs") ?? "recommended", disabled: Boolean(hint("gocryptfs")) },
          { value: "securefs", label: "securefs", hint: hint("securefs"), disabled: Boolean(hint("securefs")) },
        ],
      }),
    );
  }
  let keyfile = given.keyfile;
  if (encrypt !== "none" && encrypt !== undefined) {
    clack.log.warn("A lost key loses the archive: nobody, including you, can read an encrypted disk without it. Keep a copy off this machine.");
    if (keyfile === undefined) {
      keyfile = resolve(await text("Key file (created with a random password if it does not exist)", checks.keyfile, join(dirname(db), "blaine.key")));
    }
    if (!existsSync(keyfile)) clack.log.info(`A new random key will be written to ${keyfile} (mode 600).`);
  }

  let parity = given.parity;
  if (parity === undefined) {
    parity = await ask(
      clack.select({
        message: "Parity (PAR2 recovery data on each disk, repairs damaged files)",
        options: [
          { value: "10%", label: "10%", hint: "recommended" },
          { value: "5%", label: "5%" },
          { value: "20%", label: "20%" },
          { value: "off", label: "off" },
        ],
      }),
    );
  }
  let parityEngine = given.parityEngine;
  if (parityEngine === undefined && parity !== "off") {
    parityEngine = await ask(
      clack.select<"builtin" | "parpar" | "par2">({
        message: "Parity engine",
        options: [
          { value: "builtin", label: "builtin", hint: "Blaine's own PAR2 engine, nothing to install" },
          { value: "par2", label: "par2 (par2cmdline)", hint: hasProgram("par2") ? undefined : "not installed", disabled: !hasProgram("par2") },
          { value: "parpar", label: "parpar (faster)", hint: hasProgram("parpar") ? undefined : "not installed", disabled: !hasProgram("parpar") },
        ],
      }),
    );
  }
  let copier = given.copier;
  if (copier === undefined) {
    copier = await ask(
      clack.select<"builtin" | "dc3dd">({
        message: "Copier",
        options: [
          { value: "builtin", label: "builtin", hint: "reads, hashes and writes in one pass" },
          { value: "dc3dd", label: "dc3dd", hint: hasProgram("dc3dd") ? "forensic dd with its own hash log" : "not installed", disabled: !hasProgram("dc3dd") },
        ],
      }),
    );
  }

  const answers: InitAnswers = {
    sources,
    exclude,
    snapraidConf,
    db,
    disk,
    label,
    capacity,
    encrypt: encrypt === "none" ? undefined : encrypt,
    keyfile: encrypt === "none" ? undefined : keyfile,
    parity,
    parityEngine: parityEngine ?? "builtin",
    copier,
  };
  clack.note(
    [
      `sources   ${answers.sources.join(", ")}`,
      `exclude   ${answers.exclude.join(" ") || "(none)"}${answers.snapraidConf ? ` + ${answers.snapraidConf}` : ""}`,
      `catalog   ${answers.db}`,
      `disk      ${answers.disk} (label ${answers.label}${answers.capacity !== undefined ? `, capacity ${formatBytes(answers.capacity)}` : ""}${answers.encrypt ? `, ${answers.encrypt}, key ${answers.keyfile ?? "BLAINE_PASSWORD"}` : ""})`,
      `parity    ${answers.parity}${answers.parity === "off" ? "" : ` with ${answers.parityEngine}`}`,
      `copier    ${answers.copier}`,
    ].join("\n"),
    "Your answers",
  );
  const go = await ask(clack.confirm({ message: `Initialise disk "${answers.label}" and write ${configFile}?`, initialValue: true }));
  if (!go) {
    clack.cancel("Nothing was written.");
    throw new InitCancelled();
  }
  return answers;
}

/** After the set-up: offer a dry run of the new configuration. */
export async function offerDryRun(): Promise<boolean> {
  const clack: Clack = await import("@clack/prompts");
  const answer = await clack.confirm({ message: "Run a dry run now (shows what would be archived; changes nothing)?", initialValue: true });
  return !clack.isCancel(answer) && answer === true;
}

/** `blaine run` on a terminal with no configuration: offer to set one up. */
export async function offerInit(missing: string): Promise<boolean> {
  const clack: Clack = await import("@clack/prompts");
  clack.log.warn(`No configuration: ${missing}.`);
  const answer = await clack.confirm({ message: "Set up an archive now with blaine init?", initialValue: true });
  return !clack.isCancel(answer) && answer === true;
}
