#!/usr/bin/env bash
# Build the test collector with the OpenTelemetry Collector Builder from collector/ocb/manifest.yaml,
# once: the binary is cached outside the work tree, keyed on the manifest's content, and linked to
# build/otelcol-lab. Needs Go; without it this fails under CI=true and only warns elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=collector/ocb/manifest.yaml
if ! command -v go >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "build-collector: Go is required to build the test collector" >&2
    exit 1
  fi
  echo "build-collector: Go not found; collector tests will be skipped" >&2
  exit 0
fi
version=$(sed -n 's|.*go.opentelemetry.io/collector/receiver/otlpreceiver \(v[0-9.]*\).*|\1|p' "$manifest")
key=$( (cat "$manifest"; go version) | sha256sum | cut -c1-16)
cache=${LAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-otel-lab}/otelcol/$key
mkdir -p build
# The checksum database is not reachable for every contrib module through the module proxy here
# (404 on lookups); skip it for contrib only. Module content still comes from the proxy.
export GONOSUMDB=${GONOSUMDB:-github.com/open-telemetry/opentelemetry-collector-contrib}
if [ ! -x "$cache/otelcol-lab" ]; then
  echo "build-collector: building the test collector $version (first run only, a few minutes)"
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
  GOBIN="$cache.tmp/bin" go install "go.opentelemetry.io/collector/cmd/builder@$version"
  # ocb writes the sources and go.mod, then runs `go mod tidy`, which also resolves the test-only
  # dependencies of every module; the proxy here refuses some of those, so that step may fail. We
  # then resolve with `go mod tidy -e` (tolerates unresolvable test-only imports) and compile.
  (
    "$cache.tmp/bin/builder" --config "$manifest" --output-path "$cache.tmp/src" --skip-compilation \
      || test -f "$cache.tmp/src/go.mod"
    cd "$cache.tmp/src"
    go mod tidy -e
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o ../otelcol-lab .
  ) >"$cache.tmp/build.log" 2>&1 || { grep -v '^go: downloading' "$cache.tmp/build.log" | tail -40 >&2; exit 1; }
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
ln -sfn "$cache/otelcol-lab" build/otelcol-lab
build/otelcol-lab components >/dev/null || { echo "build-collector: build/otelcol-lab does not run" >&2; exit 1; }
echo "build-collector: build/otelcol-lab -> $cache/otelcol-lab"
