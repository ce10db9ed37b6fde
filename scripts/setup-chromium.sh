#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (Playwright drives it via executable_path;
# `playwright install` is never used: it downloads browser builds). Idempotent.
set -euo pipefail
# Chromium runs here: `--version` fails on a missing shared library or a broken install.
works() { command -v chromium >/dev/null 2>&1 && chromium --version >/dev/null 2>&1; }
if works; then
  exit 0
fi
in_ci() { case "${CI:-}" in 1|true|TRUE|True|yes) return 0 ;; *) return 1 ;; esac; }
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing chromium (apt)"
  if apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; then
    works && exit 0
  fi
fi
message="setup: chromium is not installed and could not be installed (need root + apt-get); browser tests will be skipped"
if in_ci; then
  echo "${message/will be skipped/cannot run} under CI=true" >&2
  exit 1
fi
echo "$message" >&2
exit 0
