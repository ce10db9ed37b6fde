#!/usr/bin/env bash
# Create one virtualenv per service (from its pinned requirements.txt) plus the test harness's,
# under build/venvs/. A venv is rebuilt only when its requirements file changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY' || { echo "Python >= 3.11 is required (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
# Debian's own python3 has venv without ensurepip unless python3-venv is installed.
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
  || { echo "setup: $PYTHON cannot create virtualenvs: install python3-venv" >&2; exit 1; }
export PIP_DISABLE_PIP_VERSION_CHECK=1

make_venv() {  # name requirements-file
  local name=$1 reqs=$2 dir=build/venvs/$1
  local stamp="$dir/.requirements.sha256"
  local want
  want=$(sha256sum "$reqs" | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "setup: virtualenv $name from $reqs"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/pip" install -q -r "$reqs"
  echo "$want" > "$stamp"
}

make_venv test requirements-test.txt
for reqs in services/*/requirements.txt; do
  make_venv "$(basename "$(dirname "$reqs")")" "$reqs"
done
