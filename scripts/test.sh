#!/usr/bin/env bash
# The whole test suite plus the linter: see README.md.
source "$(dirname "$0")/env.sh" dev,ray
cd "$ROOT"
bash scripts/chromium.sh
ruff check .
exec python -m pytest "$@"
