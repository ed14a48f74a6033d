#!/usr/bin/env bash
# One command from a fresh machine to a first archive: installs Bun (from
# npm) and the dependencies if missing, then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bun >/dev/null 2>&1 || npm install -g bun@1.4.5
bun install --frozen-lockfile
bun run scripts/demo.ts
