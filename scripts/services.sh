#!/usr/bin/env bash
# Private PostgreSQL + NATS (JetStream) for `make run` / `make test`.
#
#   scripts/services.sh up       start (or reuse) both; print `export ...` lines on stdout
#   scripts/services.sh down     stop the ones this script started
#   scripts/services.sh status   show what runs (exit 0 if both run, 3 otherwise)
#   scripts/services.sh env      print the env file written by the last `up`
#
# Progress goes to stderr (one line per service); stdout carries only the export lines,
# so both `eval "$(scripts/services.sh up)"` and `. .data/services.env` work.
#
# If DATABASE_URL and NATS_URL are both set and both answer, `up` uses them and starts
# nothing. Otherwise it installs what is missing (Debian: postgresql, nats-server) and
# runs its own servers on 127.0.0.1, with their data under $DATA_DIR (default <repo>/.data):
#   $DATA_DIR/pg            PostgreSQL cluster (owned by `postgres` when run as root); log in pg/log
#   $DATA_DIR/pg.port       the port chosen for it (5432 if free)
#   $DATA_DIR/nats          JetStream store; nats.log, nats.pid, nats.port, nats.mport beside it
#   $DATA_DIR/nats-auth     NATS identities (docs/nats-auth.md): operator/account/system seeds,
#                           auth.conf, and the creds of the control plane, the sandbox, an admin
#   $DATA_DIR/services.env  DATABASE_URL / NATS_URL / NATS_AUTH_DIR / NATS_CREDS / NATS_ACCOUNT_SEED_FILE
#
# NATS runs with authentication on (operator mode, made by `nats-identities init`, which
# this script builds from the workspace's natsauth crate): every client needs creds.
set -euo pipefail
umask 022

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT_DIR=$(dirname -- "$SCRIPT_DIR")
DATA_DIR=${DATA_DIR:-$ROOT_DIR/.data}
DATA_DIR=$(realpath -m -- "$DATA_DIR")

PG_DIR=$DATA_DIR/pg
PG_PORT_FILE=$DATA_DIR/pg.port
NATS_DIR=$DATA_DIR/nats
NATS_LOG=$DATA_DIR/nats.log
NATS_PID_FILE=$DATA_DIR/nats.pid
NATS_PORT_FILE=$DATA_DIR/nats.port
NATS_MPORT_FILE=$DATA_DIR/nats.mport
NATS_SETTINGS=$SCRIPT_DIR/nats.conf
NATS_AUTH_DIR=$DATA_DIR/nats-auth
# nats-server 2.9 resolves `include` relative to the including file: one file, made below.
NATS_CONF=$NATS_AUTH_DIR/server.conf
ENV_FILE=$DATA_DIR/services.env
LOCK_FILE=$DATA_DIR/.services.lock

PG_DEFAULT_PORT=5432;   PG_SCAN=(5433 5532)
NATS_DEFAULT_PORT=4222; NATS_SCAN=(4223 4322)
NATS_DEFAULT_MPORT=8222; NATS_MSCAN=(8223 8322)

log() { printf '%s\n' "$*" >&2; }
die() { printf 'services.sh: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------- small helpers

# tcp_open HOST PORT: something accepts TCP connections there.
tcp_open() {
    # shellcheck disable=SC2016  # $1/$2 expand in the inner bash, on purpose
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" >/dev/null 2>&1
}

# port_free PORT: nothing listens on 127.0.0.1:PORT (nor on a wildcard address).
port_free() {
    local p=$1
    tcp_open 127.0.0.1 "$p" && return 1
    if command -v python3 >/dev/null 2>&1; then
        # SO_REUSEADDR like the servers use, so TIME_WAIT leftovers don't count as "taken".
        python3 - "$p" >/dev/null 2>&1 <<'PY' || return 1
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
PY
    fi
    return 0
}

# pick_port PREFERRED REMEMBERED LO HI [EXCLUDE...]: first free port of remembered, preferred, LO..HI.
pick_port() {
    local pref=$1 remembered=$2 lo=$3 hi=$4; shift 4
    local p x cands=()
    [ -n "$remembered" ] && cands+=("$remembered")
    cands+=("$pref")
    for ((p = lo; p <= hi; p++)); do cands+=("$p"); done
    for p in "${cands[@]}"; do
        for x in "$@"; do [ "$p" = "$x" ] && continue 2; done
        if port_free "$p"; then echo "$p"; return 0; fi
    done
    return 1
}

read_file() { if [ -s "$1" ]; then head -n1 -- "$1" | tr -dc '0-9'; fi; }

# pid_is PID COMM: PID is alive and its command name is COMM.
pid_is() {
    local pid=$1 comm=$2
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]
}

# ---------------------------------------------------------------- installation

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "missing: $* (no apt-get here; install them yourself)"
    local sudo=()
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 || die "missing: $* (not root and no sudo)"
        sudo=(sudo -n)
    fi
    # Wait for a dpkg lock held by someone else instead of failing at once.
    local opts=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
    local aptlog=$DATA_DIR/services-apt.log
    mkdir -p -- "$DATA_DIR"
    log "installing: $* (log: $aptlog)"
    if [ "$APT_UPDATED" -eq 0 ]; then
        "${sudo[@]}" apt-get "${opts[@]}" update >"$aptlog" 2>&1 </dev/null \
            || { tail -n 20 "$aptlog" >&2; die "apt-get update failed (log: $aptlog)"; }
        APT_UPDATED=1
    fi
    # policy-rc.d / no init system keeps the packages' own services (a system cluster on
    # 5432, a system nats) from starting; if one does start, port picking steps around it.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get "${opts[@]}" install -y --no-install-recommends "$@" >>"$aptlog" 2>&1 </dev/null \
        || { tail -n 20 "$aptlog" >&2; die "apt-get install $* failed (log: $aptlog)"; }
}

# Highest /usr/lib/postgresql/<v>/bin with a server in it (or the one matching an existing cluster).
pg_bindir() {
    local v
    if [ -s "$PG_DIR/PG_VERSION" ]; then
        v=$(cat "$PG_DIR/PG_VERSION")
        if [ -x "/usr/lib/postgresql/$v/bin/postgres" ]; then
            echo "/usr/lib/postgresql/$v/bin"; return 0
        fi
    fi
    [ -d /usr/lib/postgresql ] || return 1
    v=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | while read -r d; do
            [ -x "/usr/lib/postgresql/$d/bin/initdb" ] && [ -x "/usr/lib/postgresql/$d/bin/pg_ctl" ] \
                && [ -x "/usr/lib/postgresql/$d/bin/postgres" ] && echo "$d"
        done | tail -n1)
    [ -n "$v" ] && echo "/usr/lib/postgresql/$v/bin"
}

nats_bin() {
    command -v nats-server 2>/dev/null || { [ -x /usr/bin/nats-server ] && echo /usr/bin/nats-server; } || \
        { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; } || return 1
}

ensure_tools() {
    local need=()
    pg_bindir >/dev/null || need+=(postgresql)
    if ! { [ -x "$(pg_bindir || echo /nonexistent)/pgbench" ] || command -v pgbench >/dev/null 2>&1; }; then
        need+=(postgresql-contrib postgresql-client)
    fi
    nats_bin >/dev/null || need+=(nats-server)
    if [ ${#need[@]} -gt 0 ]; then
        # de-duplicate
        mapfile -t need < <(printf '%s\n' "${need[@]}" | awk '!seen[$0]++')
        apt_install "${need[@]}"
    fi
    PG_BIN=$(pg_bindir) || die "no PostgreSQL server under /usr/lib/postgresql/*/bin after install"
    NATS_BIN=$(nats_bin) || die "nats-server not found after install"
    command -v runuser >/dev/null 2>&1 || ! is_root || die "runuser (util-linux) not found"
}

# ---------------------------------------------------------------- PostgreSQL

# Run a PostgreSQL binary as the cluster owner: `postgres` when we are root (initdb and
# pg_ctl refuse root), ourselves otherwise. From / so an unreadable cwd doesn't matter,
# in the C locale so a bogus LANG/LC_ALL doesn't stop initdb, and with fd 9 (our flock)
# closed so the postmaster doesn't inherit and hold the lock.
as_pg() {
    if is_root; then
        (cd / && exec 9>&- && exec runuser -u postgres -- env LC_ALL=C LANG=C "$@")
    else
        (cd / && exec 9>&- && exec env LC_ALL=C LANG=C "$@")
    fi
}

# Make every directory above $1 traversable by the postgres user (adds o+x only where missing).
ensure_traversable() {
    is_root || return 0
    local target=$1 d
    runuser -u postgres -- test -x "$target" 2>/dev/null && return 0
    d=$target
    local chain=()
    while [ "$d" != "/" ]; do chain=("$d" "${chain[@]}"); d=$(dirname -- "$d"); done
    for d in "${chain[@]}"; do
        if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
            chmod o+x -- "$d"
            log "note: chmod o+x $d so the postgres user can reach $PG_DIR"
        fi
    done
}

# Prints the pid of our running postmaster, or fails. Removes a stale postmaster.pid
# (e.g. left by a killed session, possibly naming a pid now reused by something else).
pg_running_pid() {
    local pidf=$PG_DIR/postmaster.pid pid
    [ -s "$pidf" ] || return 1
    pid=$(head -n1 "$pidf" | tr -dc '0-9')
    if pid_is "$pid" postgres && \
       [ "$(readlink -f "/proc/$pid/cwd" 2>/dev/null)" = "$(readlink -f "$PG_DIR")" ]; then
        echo "$pid"; return 0
    fi
    return 1
}

# After a crash (kill -9, OOM, a session ending) the old postmaster may still be exiting or
# an unreaped zombie (here PID 1 reaps orphans lazily), and its children may linger; a new
# postmaster then refuses to start ("lock file ... already exists", "shared memory block is
# still in use"). Wait, up to ~15 s, until no process of the old cluster is left.
pg_wait_old_gone() {
    local pids=() f pid i left
    for f in "$PG_DIR/postmaster.pid" "$PG_DIR"/.s.PGSQL.*.lock; do
        [ -s "$f" ] && pids+=("$(head -n1 "$f" | tr -dc '0-9')")
    done
    for ((i = 0; i < 60; i++)); do
        left=0
        for pid in "${pids[@]}"; do pid_is "$pid" postgres && left=1; done
        for f in /proc/[0-9]*/cwd; do
            [ "$(readlink "$f" 2>/dev/null)" = "$PG_DIR" ] && { left=1; break; }
        done
        [ "$left" -eq 0 ] && return 0
        sleep 0.25
    done
    log "postgres: processes of the previous server are still around; trying to start anyway"
}

pg_running_port() { sed -n 4p "$PG_DIR/postmaster.pid" 2>/dev/null | tr -dc '0-9'; }

pg_ready() {  # pg_ready PORT
    local isready
    isready=$( [ -x "$PG_BIN/pg_isready" ] && echo "$PG_BIN/pg_isready" || command -v pg_isready || true)
    if [ -n "$isready" ]; then
        "$isready" -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -t 3
    else
        tcp_open 127.0.0.1 "$1"
    fi
}

pg_up() {
    local pid port
    if pid=$(pg_running_pid); then
        port=$(pg_running_port)
        if pg_ready "$port"; then
            echo "$port" >"$PG_PORT_FILE"
            log "postgres: already running on 127.0.0.1:$port (pid $pid)"
            PG_PORT=$port; return 0
        fi
        log "postgres: pid $pid exists but 127.0.0.1:$port does not answer; restarting it"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi

    mkdir -p -- "$DATA_DIR"
    ensure_traversable "$DATA_DIR"
    mkdir -p -- "$PG_DIR"
    if is_root && [ "$(stat -c %U "$PG_DIR")" != postgres ]; then chown -R postgres:postgres -- "$PG_DIR"; fi
    chmod 700 -- "$PG_DIR"

    if [ ! -s "$PG_DIR/PG_VERSION" ]; then
        # Half-made dir from an interrupted initdb: it is ours, start over.
        if [ -n "$(ls -A -- "$PG_DIR")" ]; then
            log "postgres: $PG_DIR has no PG_VERSION; wiping the incomplete cluster"
            find "$PG_DIR" -mindepth 1 -delete
        fi
        if ! as_pg "$PG_BIN/initdb" -D "$PG_DIR" --auth=trust -U postgres -E UTF8 --no-locale \
                >"$DATA_DIR/initdb.log" 2>&1; then
            tail -n 20 "$DATA_DIR/initdb.log" >&2
            die "initdb failed (full output: $DATA_DIR/initdb.log)"
        fi
    fi
    pg_wait_old_gone
    rm -f -- "$PG_DIR/postmaster.pid"   # stale (checked above that no postmaster of ours runs)

    port=$(pick_port "$PG_DEFAULT_PORT" "$(read_file "$PG_PORT_FILE")" "${PG_SCAN[@]}") \
        || die "no free port for postgres in $PG_DEFAULT_PORT, ${PG_SCAN[0]}-${PG_SCAN[1]}"

    # Unix socket inside the data dir; sun_path holds 107 bytes, so skip it on long paths (TCP only).
    local sockdir=$PG_DIR
    if [ $(( ${#PG_DIR} + ${#port} + 10 )) -gt 107 ]; then sockdir=''; fi
    case $PG_DIR in *"'"*) die "DATA_DIR must not contain a single quote";; esac

    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/log" -s -w -t 60 \
            -o "-p $port -k '$sockdir' -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" \
            start </dev/null >/dev/null 2>&1; then
        tail -n 20 "$PG_DIR/log" >&2 || true
        die "postgres failed to start on port $port (log: $PG_DIR/log)"
    fi
    local i
    for ((i = 0; i < 60; i++)); do pg_ready "$port" && break; sleep 0.5; done
    pg_ready "$port" || die "postgres started but 127.0.0.1:$port does not answer (log: $PG_DIR/log)"
    echo "$port" >"$PG_PORT_FILE"
    log "postgres: started on 127.0.0.1:$port (data $PG_DIR, pid $(pg_running_pid || echo '?'))"
    PG_PORT=$port
}

pg_down() {
    local pid
    if pid=$(pg_running_pid); then
        PG_BIN=$(pg_bindir) || die "no PostgreSQL binaries to stop the server with"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -m fast -w -t 60 -s stop >/dev/null 2>&1 \
            || { kill -INT "$pid" 2>/dev/null || true; }
        log "postgres: stopped (pid $pid)"
    else
        log "postgres: not running"
    fi
}

# ---------------------------------------------------------------- NATS

nats_running_pid() {
    local pid
    pid=$(read_file "$NATS_PID_FILE")
    pid_is "$pid" nats-server || return 1
    # and it is ours: its command line names our store dir
    local args
    args=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $'\n'$args$'\n' == *$'\n'"$NATS_DIR"$'\n'* ]] || return 1
    echo "$pid"
}

nats_healthy() {  # nats_healthy MONITOR_PORT -> 0 ok, 1 not (yet), 2 can't tell
    local url="http://127.0.0.1:$1/healthz?js-enabled-only=true" body
    if command -v curl >/dev/null 2>&1; then
        body=$(curl -fsS --max-time 2 "$url" 2>/dev/null) || return 1
    elif command -v python3 >/dev/null 2>&1; then
        body=$(python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' "$url" 2>/dev/null) || return 1
    else
        return 2
    fi
    [[ $body == *'"ok"'* ]]
}

# nats_auth: the identities (kept once made) and the server config (settings + trust).
nats_auth() {
    local bin=${CARGO_TARGET_DIR:-$ROOT_DIR/target}/debug/nats-identities
    if [ ! -x "$bin" ] || [ "$ROOT_DIR/natsauth/src/lib.rs" -nt "$bin" ] || [ "$ROOT_DIR/natsauth/src/main.rs" -nt "$bin" ]; then
        log "nats: building nats-identities (natsauth)"
        (cd "$ROOT_DIR" && cargo build --quiet --locked -p natsauth --bin nats-identities) >&2 \
            || die "could not build nats-identities (cargo build -p natsauth)"
    fi
    "$bin" init "$NATS_AUTH_DIR" "${NATS_SUBJECT_PREFIX:-cp}" >/dev/null \
        || die "nats-identities init $NATS_AUTH_DIR failed"
    local tmp="$NATS_CONF.tmp.$$"
    cat "$NATS_SETTINGS" "$NATS_AUTH_DIR/auth.conf" >"$tmp"
    # A running server takes a changed configuration (revoked keys, `nats-identities
    # revoke`) by reloading it; a changed operator it can only take by restarting.
    NATS_CONF_CHANGE=none
    if ! cmp -s "$tmp" "$NATS_CONF" 2>/dev/null; then
        if [ "$(grep '^operator:' "$tmp")" = "$(grep '^operator:' "$NATS_CONF" 2>/dev/null)" ]; then
            NATS_CONF_CHANGE=reload
        else
            NATS_CONF_CHANGE=restart
        fi
        mv -f -- "$tmp" "$NATS_CONF"
    else
        rm -f -- "$tmp"
    fi
}

nats_up() {
    local pid port mport
    if pid=$(nats_running_pid); then
        port=$(read_file "$NATS_PORT_FILE")
        # A server started without $NATS_CONF lacks its settings (max_payload) or runs
        # without authentication: restart it with them, on the same port.
        if ! tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$NATS_CONF"; then
            log "nats: pid $pid runs without $NATS_CONF (authentication); restarting it with it"
        elif [ "${NATS_CONF_CHANGE:-none}" = restart ]; then
            log "nats: the trusted operator changed; restarting pid $pid"
        elif [ -n "$port" ] && tcp_open 127.0.0.1 "$port"; then
            if [ "${NATS_CONF_CHANGE:-none}" = reload ]; then
                kill -HUP "$pid" && log "nats: pid $pid reloads $NATS_CONF (revocations)"
            fi
            log "nats: already running on 127.0.0.1:$port (pid $pid, monitor :$(read_file "$NATS_MPORT_FILE"))"
            NATS_PORT=$port; return 0
        else
            log "nats: pid $pid does not answer on ${port:-?}; restarting it"
        fi
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f -- "$NATS_PID_FILE"
    mkdir -p -- "$NATS_DIR"

    port=$(pick_port "$NATS_DEFAULT_PORT" "$(read_file "$NATS_PORT_FILE")" "${NATS_SCAN[@]}" "${PG_PORT:-}") \
        || die "no free port for nats in $NATS_DEFAULT_PORT, ${NATS_SCAN[0]}-${NATS_SCAN[1]}"
    mport=$(pick_port "$NATS_DEFAULT_MPORT" "$(read_file "$NATS_MPORT_FILE")" "${NATS_MSCAN[@]}" "$port" "${PG_PORT:-}") \
        || die "no free monitoring port for nats in $NATS_DEFAULT_MPORT, ${NATS_MSCAN[0]}-${NATS_MSCAN[1]}"

    printf -- '--- %s starting nats-server on %s (monitor %s)\n' "$(date -Is)" "$port" "$mport" >>"$NATS_LOG"
    # Detached: own session, no inherited stdio, and fd 9 (our lock) closed.
    (cd / && exec 9>&- && exec setsid nohup "$NATS_BIN" -a 127.0.0.1 -p "$port" -m "$mport" \
        -c "$NATS_CONF" -js -sd "$NATS_DIR" -P "$NATS_PID_FILE" </dev/null >>"$NATS_LOG" 2>&1) &
    local spawned=$! i ok=0
    for ((i = 0; i < 100; i++)); do
        if tcp_open 127.0.0.1 "$port"; then ok=1; break; fi
        if ! kill -0 "$spawned" 2>/dev/null && ! nats_running_pid >/dev/null; then break; fi
        sleep 0.2
    done
    if [ "$ok" -ne 1 ]; then
        tail -n 20 "$NATS_LOG" >&2 || true
        die "nats-server did not come up on 127.0.0.1:$port (log: $NATS_LOG)"
    fi
    # nats writes -P itself; fall back to the pid we spawned if it hasn't yet.
    for ((i = 0; i < 25; i++)); do [ -s "$NATS_PID_FILE" ] && break; sleep 0.2; done
    [ -s "$NATS_PID_FILE" ] || echo "$spawned" >"$NATS_PID_FILE"
    local h=1
    for ((i = 0; i < 50; i++)); do
        nats_healthy "$mport" && { h=0; break; } || h=$?
        [ "$h" -eq 2 ] && break
        sleep 0.2
    done
    [ "$h" -eq 1 ] && die "nats-server answers on $port but JetStream is not healthy (log: $NATS_LOG)"
    echo "$port" >"$NATS_PORT_FILE"
    echo "$mport" >"$NATS_MPORT_FILE"
    log "nats: started on 127.0.0.1:$port with JetStream (store $NATS_DIR, monitor :$mport, pid $(read_file "$NATS_PID_FILE"))"
    NATS_PORT=$port
}

nats_down() {
    local pid
    if pid=$(nats_running_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
        rm -f -- "$NATS_PID_FILE"
        log "nats: stopped (pid $pid)"
    else
        log "nats: not running"
    fi
}

# ---------------------------------------------------------------- external services

# External DATABASE_URL / NATS_URL: both set and both answering.
external_reachable() {
    [ -n "${DATABASE_URL:-}" ] && [ -n "${NATS_URL:-}" ] || return 1
    local isready hostport host port
    isready=$(command -v pg_isready || { b=$(pg_bindir 2>/dev/null) && [ -x "$b/pg_isready" ] && echo "$b/pg_isready"; } || true)
    if [ -n "$isready" ]; then
        "$isready" -q -t 3 -d "$DATABASE_URL" >/dev/null 2>&1 || return 1
    else
        # postgres[ql]://[user[:pw]@]host[:port][/db][?...]
        hostport=${DATABASE_URL#*://}; hostport=${hostport%%[/?]*}; hostport=${hostport##*@}
        host=${hostport%:*}; port=${hostport##*:}; [ "$host" = "$hostport" ] && port=5432
        tcp_open "${host:-127.0.0.1}" "${port:-5432}" || return 1
    fi
    # nats://[user[:pw]@]host[:port][,nats://...]  (first server only)
    hostport=${NATS_URL%%,*}; hostport=${hostport#*://}; hostport=${hostport%%/*}; hostport=${hostport##*@}
    host=${hostport%:*}; port=${hostport##*:}; [ "$host" = "$hostport" ] && port=4222
    host=${host#[}; host=${host%]}
    tcp_open "${host:-127.0.0.1}" "${port:-4222}"
}

# Plain `export NAME=value` (valid for both `source` in sh/bash and `include` in make);
# shell-quoted only when the value has characters a shell would interpret.
env_line() {
    if [[ $2 =~ ^[A-Za-z0-9_:/@.,%+=-]+$ ]]; then printf 'export %s=%s\n' "$1" "$2"
    else printf 'export %s=%q\n' "$1" "$2"; fi
}

write_env() {  # write_env DATABASE_URL NATS_URL [NATS_AUTH_DIR]
    local tmp="$ENV_FILE.tmp.$$"
    mkdir -p -- "$DATA_DIR"
    {
        printf '# written by scripts/services.sh up on %s\n' "$(date -Is)"
        env_line DATABASE_URL "$1"
        env_line NATS_URL "$2"
        if [ -n "${3:-}" ]; then
            env_line NATS_AUTH_DIR "$3"
            env_line NATS_CREDS "$3/controlplane.creds"
            env_line NATS_ACCOUNT_SEED_FILE "$3/account.seed"
        fi
    } >"$tmp"
    mv -f -- "$tmp" "$ENV_FILE"
    grep '^export ' "$ENV_FILE"
}

lock() {
    mkdir -p -- "$DATA_DIR"
    exec 9>"$LOCK_FILE"
    flock -w 300 9 || die "another services.sh holds $LOCK_FILE"
}

# ---------------------------------------------------------------- commands

cmd_up() {
    if external_reachable; then
        log "postgres: using DATABASE_URL from the environment (reachable)"
        log "nats: using NATS_URL from the environment (reachable)"
        [ -n "${NATS_AUTH_DIR:-}" ] || log "nats: NATS_AUTH_DIR is not set: clients need the identities that server trusts (docs/nats-auth.md)"
        write_env "$DATABASE_URL" "$NATS_URL" "${NATS_AUTH_DIR:-}"
        return 0
    fi
    lock
    ensure_tools
    PG_PORT='' NATS_PORT=''
    pg_up
    nats_auth
    nats_up
    write_env "postgres://postgres@127.0.0.1:$PG_PORT/postgres" "nats://127.0.0.1:$NATS_PORT" "$NATS_AUTH_DIR"
}

cmd_down() {
    [ -d "$DATA_DIR" ] || { log "nothing to stop ($DATA_DIR does not exist)"; return 0; }
    lock
    pg_down
    nats_down
    rm -f -- "$ENV_FILE"
}

cmd_status() {
    local rc=0 pid port
    if pid=$(pg_running_pid); then
        port=$(pg_running_port)
        PG_BIN=$(pg_bindir || true)
        if pg_ready "$port"; then log "postgres: running on 127.0.0.1:$port (pid $pid, data $PG_DIR)"
        else log "postgres: pid $pid alive but 127.0.0.1:$port not accepting connections"; rc=3; fi
    else
        log "postgres: not running (data $PG_DIR)"; rc=3
    fi
    if pid=$(nats_running_pid); then
        port=$(read_file "$NATS_PORT_FILE")
        if tcp_open 127.0.0.1 "$port"; then
            log "nats: running on 127.0.0.1:$port (pid $pid, monitor :$(read_file "$NATS_MPORT_FILE"), store $NATS_DIR)"
        else log "nats: pid $pid alive but 127.0.0.1:$port not accepting connections"; rc=3; fi
    else
        log "nats: not running (store $NATS_DIR)"; rc=3
    fi
    if [ -s "$ENV_FILE" ]; then grep '^export ' "$ENV_FILE"; fi
    return "$rc"
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) if [ -s "$ENV_FILE" ]; then grep '^export ' "$ENV_FILE"; else die "no $ENV_FILE; run: $0 up"; fi ;;
    *) printf 'usage: %s up|down|status|env\n' "$0" >&2; exit 2 ;;
esac
