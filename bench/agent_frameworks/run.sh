#!/usr/bin/env bash
# Occasional measurement (not part of `make bench` or `make test`): the shop agent hand-written vs
# LangGraph vs the OpenAI Agents SDK, against the mock LLM (see README.md). Venvs and results go to
# build/agent-frameworks/. Mock pinned to CPU $MOCK_CPU, clients to CPU $CLIENT_CPU.
#   bash bench/agent_frameworks/run.sh            (full: 50 turns x 3 reps, 7 import reps)
#   REPS=1 IMPORT_REPS=3 bash bench/agent_frameworks/run.sh   (quicker)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
PORT=${PORT:-18431}
N=${N:-50}
WARMUP=${WARMUP:-3}
REPS=${REPS:-3}
IMPORT_REPS=${IMPORT_REPS:-7}
MOCK_CPU=${MOCK_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
HERE=bench/agent_frameworks
BUILD=build/agent-frameworks
RESULTS=$BUILD/results
ASSISTANT_REQ=services/assistant/requirements.txt
export PIP_DISABLE_PIP_VERSION_CHECK=1
# no tracing exporters: nothing may leave 127.0.0.1
export LANGSMITH_TRACING=false LANGCHAIN_TRACING_V2=false OPENAI_AGENTS_DISABLE_TRACING=1

make_venv() {  # name, requirements file, then further files its content depends on
  local name=$1 req=$2 dir=$BUILD/$1
  local want
  want=$(cat "${@:2}" | sha256sum | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.req.sha256" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "agent-frameworks: virtualenv $name"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/pip" install -q -r "$req"
  echo "$want" > "$dir/.req.sha256"
}

mkdir -p "$BUILD"
make_venv base "$ASSISTANT_REQ"
make_venv langgraph "$HERE/requirements-langgraph.txt" "$ASSISTANT_REQ"
make_venv agents "$HERE/requirements-agents.txt" "$ASSISTANT_REQ"
make_venv mock-llm services/mock-llm/requirements.txt

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; then
  echo "something already listens on 127.0.0.1:$PORT; set PORT=..." >&2
  exit 1
fi
MOCK_LLM_HOST=127.0.0.1 MOCK_LLM_PORT=$PORT MOCK_LLM_API_KEY=sk-mock \
MOCK_LLM_PROFILES=$HERE/fast-profiles.yaml PYTHONPATH=services/mock-llm/src \
  taskset -c "$MOCK_CPU" "$BUILD/mock-llm/bin/python" -m mock_llm > "$RESULTS/mock.log" 2>&1 &
MOCK_PID=$!
stop_mock() {
  kill "$MOCK_PID" 2>/dev/null || true
  wait "$MOCK_PID" 2>/dev/null || true
}
trap stop_mock EXIT
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$RESULTS/mock.log" >&2; exit 1; }

# -X importtime logs (one per framework, reference only)
"$BUILD/base/bin/python" -X importtime -c "import openai" 2> "$RESULTS/importtime.direct.txt"
"$BUILD/langgraph/bin/python" -X importtime -c "from langchain_openai import ChatOpenAI; \
from langgraph.prebuilt import create_react_agent; from langchain_core.tools import StructuredTool" \
  2> "$RESULTS/importtime.langgraph.txt"
"$BUILD/agents/bin/python" -X importtime \
  -c "from agents import Agent, FunctionTool, OpenAIChatCompletionsModel, Runner" \
  2> "$RESULTS/importtime.agents.txt"

"$BUILD/base/bin/python" "$HERE/compare.py" --driver --n "$N" --warmup "$WARMUP" --reps "$REPS" \
  --import-reps "$IMPORT_REPS" --client-cpu "$CLIENT_CPU" \
  --base-url "http://127.0.0.1:$PORT/v1" --model bench-fast 2>&1 | tee "$RESULTS/driver.log"
echo "results: $RESULTS"
