# Sourced by demo.sh and test.sh: makes .venv (Python 3.11) with volcast and its pinned
# dependencies, and reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
extras=${1:-}
if [ ! -x "$VENV/bin/python" ]; then
    PY=$(command -v python3.11 || command -v python3)
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.volcast-install"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) [$extras]"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${extras:+[$extras]}"
    echo "$want" >"$stamp"
fi
export PATH="$VENV/bin:$PATH"
