#!/usr/bin/env bash
# Container engine for the sandbox service, on machines with no Docker engine.
#
# Debian's podman serves the Docker Engine API on a unix socket; the sandbox service (bollard)
# talks to it through DOCKER_HOST exactly as it talks to Docker Engine in production.
#
#   scripts/sandbox-engine.sh up      install + configure podman, start its API service,
#                                     build the Python runtime image, write .data/sandbox.env
#   scripts/sandbox-engine.sh down    stop the API service started by `up`
#   scripts/sandbox-engine.sh status  say whether the API answers (exit 0 if it does)
#
# `up` is idempotent and quick (about a second) when everything is already in place.
# It exits non-zero with a message saying what failed when podman cannot work here.
#
# Environment (all optional):
#   SANDBOX_DATA_DIR        where the socket, logs and sandbox.env go (default <repo>/.data)
#   SANDBOX_PYTHON_IMAGE    tag of the Python runtime image (default golden-arch/python-runtime:latest)
#   SANDBOX_DEBIAN_SUITE    Debian suite of the runtime image (default bookworm)
#   SANDBOX_DEBIAN_MIRROR   Debian mirror for debootstrap (default: the one apt already uses)
#   SANDBOX_REBUILD_IMAGE=1 rebuild the runtime image even if it exists
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${SANDBOX_DATA_DIR:-$REPO/.data}"
SOCK="$DATA/podman.sock"
PIDFILE="$DATA/podman.pid"
LOG="$DATA/podman.log"
ENVFILE="$DATA/sandbox.env"
IMAGE="${SANDBOX_PYTHON_IMAGE:-golden-arch/python-runtime:latest}"
SUITE="${SANDBOX_DEBIAN_SUITE:-bookworm}"
CONF=/etc/containers/containers.conf
# Bumped when the way the image is built changes, so `up` rebuilds an outdated image.
IMAGE_RECIPE=1

say() { printf 'sandbox-engine: %s\n' "$*" >&2; }
die() {
    say "ERROR: $*"
    exit 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@" || die "'$*' needs root (sudo -n failed)"
    else
        die "'$*' needs root and sudo is not available"
    fi
}

# --- installation ---------------------------------------------------------------------------

PACKAGES=(podman runc conmon catatonit debootstrap containernetworking-plugins uidmap)

missing_packages() {
    local p out=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
    done
    echo "${out[@]:-}"
}

install_packages() {
    command -v dpkg-query >/dev/null 2>&1 || die "not a Debian-like system (no dpkg); install podman + runc by hand"
    local missing
    missing="$(missing_packages)"
    [ -z "$missing" ] && return 0
    say "installing: $missing"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    if ! as_root apt-get install -y -qq --no-install-recommends $missing >"$DATA/apt.log" 2>&1; then
        say "apt-get install failed; refreshing package lists and retrying"
        as_root apt-get update -qq >>"$DATA/apt.log" 2>&1 || true
        # shellcheck disable=SC2086
        as_root apt-get install -y -qq --no-install-recommends $missing >>"$DATA/apt.log" 2>&1 ||
            die "could not install $missing with apt-get (see $DATA/apt.log)"
    fi
}

# --- configuration --------------------------------------------------------------------------

# runc, not crun: crun fails on the hybrid cgroup layout of these machines. Default ulimits,
# because the engine otherwise asks for limits above what the container's parent (conmon) holds,
# and runc, without CAP_SYS_RESOURCE here, cannot raise them ("error setting rlimit type 6/7").
# conmon runs with nofile = this shell's hard limit and nproc = kernel.pid_max, so stay at or
# under both. cgroupfs and file events, because no systemd runs here.
min_of() {
    local m=$1 v
    shift
    for v in "$@"; do
        [ "$v" = unlimited ] && continue
        [ "$v" -lt "$m" ] && m=$v
    done
    echo "$m"
}

write_config() {
    local nofile nproc want
    nofile="$(min_of 65536 "$(ulimit -Hn)")"
    nproc="$(min_of 65536 "$(ulimit -Hu)" "$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)")"
    want="# Written by golden-arch scripts/sandbox-engine.sh: podman serves the Docker Engine API for
# the sandbox service. Rewritten by that script when it differs.
[containers]
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]
log_driver = \"k8s-file\"

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
"
    if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$(printf '%s' "$want")" ]; then
        return 0
    fi
    if [ -f "$CONF" ] && ! grep -q 'golden-arch' "$CONF"; then
        as_root cp "$CONF" "$CONF.before-golden-arch"
        say "kept the previous $CONF as $CONF.before-golden-arch"
    fi
    as_root mkdir -p /etc/containers
    printf '%s' "$want" | as_root tee "$CONF" >/dev/null
    say "wrote $CONF"
}

# --- API service ----------------------------------------------------------------------------

api_ping() {
    [ -S "$SOCK" ] || return 1
    if command -v curl >/dev/null 2>&1; then
        [ "$(curl -s -m 3 --unix-socket "$SOCK" http://d/_ping 2>/dev/null)" = "OK" ]
    else
        python3 - "$SOCK" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
sys.exit(0 if b"OK" in s.recv(4096) else 1)
EOF
    fi
}

service_pid() {
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid="$(cat "$PIDFILE")"
    [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -q podman "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

start_service() {
    if api_ping; then return 0; fi
    if pid="$(service_pid)"; then
        say "podman service (pid $pid) does not answer; restarting it"
        kill "$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$SOCK"
    say "starting podman system service on $SOCK"
    # setsid: the service must outlive the shell (and the make recipe) that started it.
    # Started from the data dir: conmon drops an `oom` marker file in its working directory
    # when a container hits its memory limit, and that must not land in the work tree.
    (cd "$DATA" && exec setsid podman system service --time=0 "unix://$SOCK" >>"$LOG" 2>&1 </dev/null 9>&-) &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 100); do
        if api_ping; then return 0; fi
        if ! [ -d "/proc/$(cat "$PIDFILE")" ]; then
            tail -n 20 "$LOG" >&2 || true
            die "podman system service exited at once (log: $LOG)"
        fi
        sleep 0.1
    done
    tail -n 20 "$LOG" >&2 || true
    die "podman system service did not answer on $SOCK within 10 s (log: $LOG)"
}

stop_service() {
    local pid
    if pid="$(service_pid)"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        if [ -d "/proc/$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
        say "stopped podman service (pid $pid)"
    else
        say "no podman service started by this script is running"
    fi
    rm -f "$PIDFILE" "$SOCK"
}

# --- runtime image --------------------------------------------------------------------------

debian_mirror() {
    if [ -n "${SANDBOX_DEBIAN_MIRROR:-}" ]; then
        echo "$SANDBOX_DEBIAN_MIRROR"
        return
    fi
    local m=""
    # deb822 sources first (Debian 12's default), then the one-line format.
    m="$(awk '/^URIs:/ {u=$2} /^Suites:/ && u != "" && $0 !~ /security/ {print u; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -m1 -i debian || true)"
    if [ -z "$m" ]; then
        m="$(grep -h -E '^deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            grep -v security | awk '{print $2}' | grep -m1 -i debian || true)"
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

image_current() {
    local recipe
    podman image exists "$IMAGE" 2>/dev/null || return 1
    recipe="$(podman image inspect --format '{{ index .Labels "golden-arch.recipe" }}' "$IMAGE" 2>/dev/null || true)"
    [ "$recipe" = "$IMAGE_RECIPE" ]
}

build_image() {
    if [ "${SANDBOX_REBUILD_IMAGE:-0}" != "1" ] && image_current; then return 0; fi
    local mirror root
    mirror="$(debian_mirror)"
    root="$(mktemp -d "${TMPDIR:-/var/tmp}/golden-arch-rootfs.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" EXIT
    say "building $IMAGE: debootstrap $SUITE from $mirror (a few minutes, once)"
    if ! as_root debootstrap --variant=minbase --include=python3 "$SUITE" "$root" "$mirror" \
        >"$DATA/debootstrap.log" 2>&1; then
        tail -n 20 "$DATA/debootstrap.log" >&2 || true
        die "debootstrap failed (log: $DATA/debootstrap.log)"
    fi
    # Smaller image, same behaviour: package caches, docs and man pages are not needed at run time.
    as_root rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale
    as_root tar -C "$root" --numeric-owner -c . |
        podman import \
            --change 'CMD ["/usr/bin/python3"]' \
            --change 'WORKDIR /tmp' \
            --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
            --change 'ENV PYTHONUNBUFFERED=1' \
            --change 'ENV LANG=C.UTF-8' \
            --change "LABEL golden-arch.recipe=$IMAGE_RECIPE" \
            - "$IMAGE" >>"$DATA/debootstrap.log" 2>&1 ||
        die "podman import of the runtime image failed"
    rm -rf "$root"
    trap - EXIT
    say "built $IMAGE"
}

smoke_test() {
    local out
    out="$(podman run --rm --network none --read-only --user 65534:65534 "$IMAGE" \
        python3 -c 'print(6*7)' 2>&1)" || die "podman cannot run a container here: $out"
    [ "$out" = "42" ] || die "podman ran a container but it printed '$out' instead of 42"
}

up() {
    mkdir -p "$DATA"
    # One `up` at a time (parallel make targets may call it together).
    exec 9>"$DATA/.engine.lock"
    flock 9
    install_packages
    command -v podman >/dev/null 2>&1 || die "podman is not installed"
    write_config
    if ! info="$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>&1)"; then
        die "podman does not work on this machine: $info"
    fi
    build_image
    # One run through the CLI (well under a second), so a broken engine fails here, clearly,
    # rather than as a puzzling test failure later.
    smoke_test
    start_service
    printf 'export DOCKER_HOST=unix://%s\n' "$SOCK" >"$ENVFILE"
    say "engine ready: DOCKER_HOST=unix://$SOCK (runtime $info, image $IMAGE); env in $ENVFILE"
}

case "${1:-}" in
up) up ;;
down) stop_service ;;
status)
    if api_ping; then
        echo "up: unix://$SOCK"
    else
        echo "down"
        exit 1
    fi
    ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
