/**
 * Glob patterns over absolute paths: `*` and `?` stay within one name, `**`
 * crosses directories. Used by excludes, `ls` and `restore`.
 */
export function globToRegExp(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === "*") {
      if (pattern[i + 1] === "*") {
        // "**/" matches zero or more whole directories; a bare "**" anything.
        if (pattern[i + 2] === "/") {
          source += "(?:.*/)?";
          i += 2;
        } else {
          source += ".*";
          i += 1;
        }
      } else {
        source += "[^/]*";
      }
    } else if (char === "?") {
      source += "[^/]";
    } else if (char === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end > i + 1) {
        let body = pattern.slice(i + 1, end).replace(/\\/g, "\\\\");
        if (body.startsWith("!")) body = `^${body.slice(1)}`;
        source += `[${body}]`;
        i = end;
      } else {
        source += "\\[";
      }
    } else {
      source += char.replace(/[.+^${}()|\\\]]/g, "\\$&");
    }
  }
  return new RegExp(`^${source}$`, "s");
}

export function hasGlobMagic(text: string): boolean {
  return /[*?[]/.test(text);
}

/**
 * An exclude rule, as rsync and SnapRAID read them: a pattern without a slash
 * matches a name at any depth; with a slash it matches a path (anchored at
 * the source root when it starts with "/", else at any depth); a trailing
 * "/" restricts it to directories.
 */
export interface ExcludeRule {
  readonly pattern: string;
  readonly directoryOnly: boolean;
  readonly matchesName: boolean;
  readonly anchored: boolean;
  readonly regexp: RegExp;
}

export function parseExclude(pattern: string): ExcludeRule {
  const directoryOnly = pattern.endsWith("/");
  const body = directoryOnly ? pattern.slice(0, -1) : pattern;
  const matchesName = !body.includes("/");
  const anchored = body.startsWith("/");
  return {
    pattern,
    directoryOnly,
    matchesName,
    anchored,
    regexp: globToRegExp(anchored ? body.slice(1) : body),
  };
}

/**
 * Tests a path against exclude rules. `relative` is the path below the source
 * root (no leading slash); `absolute` the full path.
 */
export function isExcluded(
  rules: readonly ExcludeRule[],
  absolute: string,
  relative: string,
  isDirectory: boolean,
): boolean {
  for (const rule of rules) {
    if (rule.directoryOnly && !isDirectory) continue;
    if (rule.matchesName) {
      const name = absolute.slice(absolute.lastIndexOf("/") + 1);
      if (rule.regexp.test(name)) return true;
    } else if (rule.anchored) {
      // Anchored rules match below the source root, and also as full paths so
      // "/data/movies/tmp/" works whichever way the user meant it.
      if (rule.regexp.test(relative) || rule.regexp.test(absolute.slice(1))) return true;
    } else if (matchesAnySuffix(rule.regexp, relative)) {
      return true;
    }
  }
  return false;
}

function matchesAnySuffix(regexp: RegExp, relative: string): boolean {
  let rest = relative;
  for (;;) {
    if (regexp.test(rest)) return true;
    const slash = rest.indexOf("/");
    if (slash < 0) return false;
    rest = rest.slice(slash + 1);
  }
}

