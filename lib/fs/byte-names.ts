/**
 * File names that are not valid UTF-8. Linux allows any byte but "/" and
 * NUL in a name, while Blaine's paths are JavaScript strings stored as
 * SQLite TEXT, which can only hold valid Unicode. So such a name is kept as
 * a string by a reversible escape: each byte of an invalid UTF-8 sequence
 * becomes U+FDD0 (a noncharacter, never meant to appear in text) followed
 * by the byte's two uppercase hex digits, e.g. the byte 0xFF in `a\xFFb` is
 * stored as `a\uFDD0FFb`. A literal U+FDD0 in a real name is escaped the same
 * way (its three bytes EF B7 90), so every escaped string means one byte
 * string. Valid UTF-8 without U+FDD0 (every ordinary name) is its plain
 * string, unchanged; the escape shows up only where it is needed.
 *
 * Paths stay strings everywhere (catalog, joins, globs, output); only the
 * file-system call itself gets the real bytes, through `fsPath`.
 */
import { readdirSync, readlinkSync } from "node:fs";

/** Starts an escaped byte: U+FDD0 then two uppercase hex digits. */
export const BYTE_ESCAPE = "\uFDD0";

/** What Bun puts where a listed name had bytes that are not UTF-8 (or a name really has). */
const REPLACEMENT = "\uFFFD";

/** Whether `text` (a path, name or link target) stands for bytes that are not its plain UTF-8. */
export function hasEscapes(text: string): boolean {
  return text.includes(BYTE_ESCAPE);
}

/**
 * The path to hand to a file-system call: the string itself when it has no
 * escape (the fast path, one `includes`), else a Buffer of the real bytes.
 */
export function fsPath(path: string): string | Buffer {
  return path.includes(BYTE_ESCAPE) ? bytesOfText(path) : path;
}

/** The real bytes an escaped string stands for (its plain UTF-8 when it has no escape). */
export function bytesOfText(text: string): Buffer {
  let at = text.indexOf(BYTE_ESCAPE);
  if (at === -1) return Buffer.from(text, "utf8");
  const parts: Buffer[] = [];
  let runStart = 0;
  while (at !== -1) {
    const byte = hexByteAt(text, at + 1);
    // A U+FDD0 without two hex digits was never made by the escape: it stands for itself.
    if (byte === undefined) {
      at = text.indexOf(BYTE_ESCAPE, at + 1);
      continue;
    }
    parts.push(Buffer.from(text.slice(runStart, at), "utf8"), Buffer.of(byte));
    runStart = at + 3;
    at = text.indexOf(BYTE_ESCAPE, runStart);
  }
  parts.push(Buffer.from(text.slice(runStart), "utf8"));
  return Buffer.concat(parts);
}

/** How many bytes `text` stands for (a symlink's size is its target's length in bytes). */
export function byteLengthOfText(text: string): number {
  return text.includes(BYTE_ESCAPE) ? bytesOfText(text).length : Buffer.byteLength(text, "utf8");
}

/**
 * The string for a name's (or path's, or link target's) real bytes: their
 * UTF-8 where valid, each other byte and each U+FDD0's bytes escaped.
 */
export function textFromBytes(bytes: Uint8Array): string {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let text = "";
  let runStart = 0;
  let i = 0;
  while (i < buffer.length) {
    const length = validSequenceLength(buffer, i);
    if (length > 0 && !isEscapeCharacterAt(buffer, i, length)) {
      i += length;
      continue;
    }
    const escapedBytes = length > 0 ? length : 1;
    text += buffer.toString("utf8", runStart, i);
    for (let k = 0; k < escapedBytes; k++) text += BYTE_ESCAPE + hexOf(buffer[i + k]);
    i += escapedBytes;
    runStart = i;
  }
  return runStart === 0 ? buffer.toString("utf8") : text + buffer.toString("utf8", runStart);
}

/**
 * Whether a string Bun decoded from the file system may have lost bytes:
 * Bun turns invalid UTF-8 into U+FFFD, and a name holding U+FDD0 must be
 * escaped. Either way, the bytes are read again (rare: real names have neither).
 */
export function mayHaveLostBytes(text: string): boolean {
  return text.includes(REPLACEMENT) || text.includes(BYTE_ESCAPE);
}

/**
 * A directory's entry names as escaped strings. Bun's string listing is
 * lossy for names that are not UTF-8, so when one looks lossy the directory
 * is listed again as Buffers (`withFileTypes` with Buffers is broken in Bun:
 * plain names only).
 */
export function listNames(dir: string): string[] {
  const path = fsPath(dir);
  const names = readdirSync(path);
  for (const name of names) {
    if (mayHaveLostBytes(name)) return readdirSync(path, { encoding: "buffer" }).map(textFromBytes);
  }
  return names;
}

/** A symlink's target as an escaped string (read again as bytes when the plain reading is lossy). */
export function readLinkText(path: string): string {
  const target = readlinkSync(fsPath(path));
  return mayHaveLostBytes(target) ? textFromBytes(readlinkSync(fsPath(path), { encoding: "buffer" })) : target;
}

/** The length of the valid UTF-8 sequence starting at `i` (as WHATWG decodes it), or 0. */
function validSequenceLength(bytes: Uint8Array, i: number): number {
  const lead = bytes[i];
  if (lead < 0x80) return 1;
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) low = 0xa0; // overlong
    if (lead === 0xed) high = 0x9f; // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) low = 0x90; // overlong
    if (lead === 0xf4) high = 0x8f; // above U+10FFFF
  } else return 0;
  if (i + length > bytes.length) return 0;
  if (bytes[i + 1] < low || bytes[i + 1] > high) return 0;
  for (let k = 2; k < length; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return 0;
  return length;
}

/** U+FDD0 is EF B7 90 in UTF-8. */
function isEscapeCharacterAt(bytes: Uint8Array, i: number, length: number): boolean {
  return length === 3 && bytes[i] === 0xef && bytes[i + 1] === 0xb7 && bytes[i + 2] === 0x90;
}

function hexOf(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, "0");
}

function hexByteAt(text: string, at: number): number | undefined {
  const high = hexDigit(text.charCodeAt(at));
  const low = hexDigit(text.charCodeAt(at + 1));
  return high === undefined || low === undefined ? undefined : high * 16 + low;
}

/** Uppercase only, as the escape writes them, so `\uFDD0ab` is not an escape. */
function hexDigit(code: number): number | undefined {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  return undefined;
}

const ESCAPED_BYTE = /\uFDD0([0-9A-F]{2})/g;

/**
 * A path quoted for people (human output; `--json` keeps the catalog's
 * escaped string): JSON quoting, with each escaped byte shown as `\xFF`.
 * JSON doubles real backslashes, so `\x` in the quoted form is always a byte.
 */
export function quotedPath(path: string): string {
  const quoted = JSON.stringify(path);
  return quoted.includes(BYTE_ESCAPE) ? quoted.replace(ESCAPED_BYTE, "\\x$1") : quoted;
}

const READABLE_BYTE = /\\x([89A-Fa-f][0-9A-Fa-f])/g;

/**
 * The escaped string for a path typed as `quotedPath` shows it (`\xFF` for
 * a byte that is not UTF-8; the escape only ever holds bytes from 0x80 up).
 * Callers try the path as typed first: a real name may contain `\x`.
 */
export function textFromReadable(typed: string): string {
  return typed.includes("\\x") ? typed.replace(READABLE_BYTE, (_, hex: string) => BYTE_ESCAPE + hex.toUpperCase()) : typed;
}
