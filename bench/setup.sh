#!/usr/bin/env bash
# Benchmark-only tools: build/venvs/bench (py-spy, from bench/requirements.txt) and, for the
# gevent serving variant of bench_streams.py, build/venvs/bench-assistant (the assistant's pinned
# requirements plus gevent). Rebuilt only when a requirements file changes. `make bench` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

make_venv() {  # name, then pip arguments
  local name=$1 dir=build/venvs/$1
  shift
  local want
  want=$(cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.bench.sha256" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "bench setup: virtualenv $name"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  local args=()
  for file in "$@"; do args+=(-r "$file"); done
  "$dir/bin/pip" install -q "${args[@]}"
  echo "$want" > "$dir/.bench.sha256"
}

make_venv bench bench/requirements.txt
build/venvs/bench/bin/py-spy --version >/dev/null  # a binary inside the wheel: prove it runs
make_venv bench-assistant services/assistant/requirements.txt bench/requirements-gevent.txt
