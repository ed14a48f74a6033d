#!/usr/bin/env bash
# One command from a fresh machine to a first archive: installs Bun (from
# npm) and the dependencies if missing, then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v bun >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || { echo "scripts/demo.sh: neither bun nor npm is installed: install Bun 1.4.5 (https://bun.sh) or npm (Debian: apt-get install npm), then run this again" >&2; exit 2; }
  npm install -g bun@1.4.5
fi
bun install --frozen-lockfile
bun run scripts/demo.ts
