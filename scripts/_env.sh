# Shared setup for scripts/run and scripts/test: creates .venv and installs the project into it
# (again only when pyproject.toml changed). Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)'; then
      echo "$candidate"; return 0
    fi
  done
  echo "Python 3.11 (or 3.12/3.13) is needed" >&2; return 1
}

ensure_venv() {  # ensure_venv [extras]
  local extras="${1:-}" spec="." stamp
  [ -n "$extras" ] && spec=".[${extras}]"
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  stamp="$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras}"
  if [ "$(cat .venv/.installed 2>/dev/null)" != "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
    .venv/bin/python -m pip install --quiet -e "$spec"
    echo "$stamp" > .venv/.installed
  fi
}
