/**
 * Compares two paths the way SQLite's BINARY collation orders them: by the
 * bytes of their UTF-8, which is the order of their code points. JavaScript's
 * `<` compares UTF-16 code units instead, and the two disagree when a
 * character above U+FFFF meets one in U+E000–U+FFFF.
 */
export function comparePaths(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x < 0xd800 && y < 0xd800) return x - y;
    return (a.codePointAt(i) ?? 0) - (b.codePointAt(i) ?? 0);
  }
  return a.length - b.length;
}

/** What every path below `dir` starts with: `dir` and a "/" ("/" itself for the root). */
export function childPrefix(dir: string): string {
  return dir.endsWith("/") ? dir : `${dir}/`;
}

/** Whether `path` is `dir` or lies below it. */
export function isAtOrUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(childPrefix(dir));
}
