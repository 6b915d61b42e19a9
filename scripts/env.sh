# Sourced by demo.sh and test.sh: makes .venv (Python 3.11) with volcast and the exact versions
# of constraints.txt, and reinstalls only when pyproject.toml or constraints.txt changed since
# the last install (docs/dependencies.md).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
extras=${1:-}
if [ ! -x "$VENV/bin/python" ]; then
    PY=$(command -v python3.11 || command -v python3)
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.volcast-install"
sha() { sha256sum "$1" | cut -d' ' -f1; }
want="pyproject $(sha "$ROOT/pyproject.toml") constraints $(sha "$ROOT/constraints.txt") [$extras]"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -c "$ROOT/constraints.txt" -e "$ROOT${extras:+[$extras]}"
    echo "$want" >"$stamp"
fi
export PATH="$VENV/bin:$PATH"
