#!/usr/bin/env bash
# The servers the scale-out tests run against, on loopback: PostgreSQL (the catalog), an S3
# server and Azurite (the blob stores). Idempotent: a server already answering is left as it
# is. Prints the environment the tests read; source it:
#   eval "$(bash scripts/services.sh start)"
#   bash scripts/services.sh stop
# Data lives under $APERTURE_SERVICES_DIR (default /tmp/aperture-services): PostgreSQL refuses
# to run as root, so its folder belongs to the `postgres` user, outside the checkout. The S3
# server (s3s-fs) and Azurite are what `scripts/setup.sh --services` installed under $DIR/tools.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${APERTURE_SERVICES_DIR:-/tmp/aperture-services}
TOOLS=${APERTURE_TOOLS_DIR:-$DIR/tools}
PG_PORT=${APERTURE_PG_PORT:-55432}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
S3_PORT=${APERTURE_S3_PORT:-55433}
S3_BUCKET=aperture-test
S3_KEY_ID=aperture
S3_SECRET=aperture-secret
AZURITE_PORT=${APERTURE_AZURITE_PORT:-55434}
AZURE_CONTAINER=aperture-test
# Azurite's fixed development account and key (public, documented by Microsoft).
AZURE_ACCOUNT=devstoreaccount1
AZURE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
# How long a server may take to answer after it was started.
WAIT_S=30

log() { echo "services: $*" >&2; }

# Whether an HTTP server answers on the loopback port (any status will do).
answers() {
    local code
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null) || true
    [[ -n "$code" && "$code" != 000 ]]
}

# wait_answer NAME PORT PIDFILE LOG: waits until the server answers, or fails saying why.
wait_answer() {
    local name=$1 port=$2 pidfile=$3 logfile=$4 i
    for ((i = 0; i < WAIT_S * 10; i++)); do
        answers "$port" && return 0
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            log "$name exited at start; the end of $logfile:"
            tail -n 20 "$logfile" >&2
            return 1
        fi
        sleep 0.1
    done
    log "$name does not answer on 127.0.0.1:$port after ${WAIT_S} s; the end of $logfile:"
    tail -n 20 "$logfile" >&2
    return 1
}

# start_bg NAME PIDFILE LOG COMMAND...: starts a server detached from this script's output
# (the caller's `$(...)` would otherwise wait for it).
start_bg() {
    local name=$1 pidfile=$2 logfile=$3
    shift 3
    nohup "$@" </dev/null >"$logfile" 2>&1 &
    echo $! >"$pidfile"
    log "$name starting (pid $!, log $logfile)"
}

# stop_bg NAME PIDFILE: stops the server this script started, by its recorded pid.
stop_bg() {
    local name=$1 pidfile=$2 pid
    [[ -f "$pidfile" ]] || return 0
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
        for _ in {1..50}; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        log "$name stopped"
    fi
    rm -f "$pidfile"
}

# Runs a command as the postgres user when we are root (initdb and postgres refuse root).
as_pg() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_init() {
    local data=$1
    mkdir -p "$data"
    if [[ $(id -u) == 0 ]]; then chown postgres: "$data"; fi
    as_pg "$PG_BIN/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-locale >/dev/null
}

# A postmaster.pid left by a server that no longer runs (a killed machine, a folder restored
# from a snapshot) names a process id that another program may hold now; PostgreSQL then
# refuses to start. Nothing answers on our port, so a pid file whose process is not a
# postgres serving this folder is stale.
remove_stale_pid() {
    local data=$1 pid
    [[ -f "$data/postmaster.pid" ]] || return 0
    pid=$(head -n1 "$data/postmaster.pid")
    if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "postgres.*$data"; then
        return 0
    fi
    log "removing a stale $data/postmaster.pid (process $pid is not its server)"
    rm -f "$data/postmaster.pid"
}

# Tests make a database each: without syncs that stays quick (nothing here needs to survive
# a power cut; tests that restart a server start one of their own).
pg_ctl_start() {
    local data=$1
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
        -o "-p $PG_PORT -k $data -c listen_addresses=127.0.0.1 -c max_connections=400 \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null
}

pg_start() {
    local data="$DIR/pg"
    if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
        log "PostgreSQL server binaries not found (install postgresql-15)"
        return 1
    fi
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
        log "PostgreSQL already answers on 127.0.0.1:$PG_PORT"
    else
        mkdir -p "$DIR"
        chmod 755 "$DIR"
        if [[ ! -f "$data/PG_VERSION" ]]; then
            rm -rf "$data"
            pg_init "$data"
        fi
        remove_stale_pid "$data"
        if ! pg_ctl_start "$data"; then
            # The data folder is scratch: a second try starts from a fresh one.
            log "PostgreSQL did not start; the end of $data/server.log:"
            tail -n 20 "$data/server.log" >&2 || true
            log "trying once more with a fresh data folder"
            # A server still starting after the wait must not run on a folder being removed.
            as_pg "$PG_BIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
            rm -rf "$data"
            pg_init "$data"
            if ! pg_ctl_start "$data"; then
                log "PostgreSQL did not start again; the end of $data/server.log:"
                tail -n 20 "$data/server.log" >&2 || true
                return 1
            fi
        fi
        log "PostgreSQL started on 127.0.0.1:$PG_PORT ($data)"
    fi
    echo "export APERTURE_TEST_POSTGRES='postgres://postgres@127.0.0.1:$PG_PORT/postgres'"
    echo "export APERTURE_TEST_PG_BIN='$PG_BIN'"
}

pg_stop() {
    local data="$DIR/pg"
    if [[ -f "$data/postmaster.pid" ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
        log "PostgreSQL stopped"
    fi
}

# S3: s3s-fs serves a folder, each subfolder a bucket; it checks the access key and keeps its
# data (and unfinished multipart uploads) on disk across restarts.
s3_start() {
    local bin=$TOOLS/s3s-fs/bin/s3s-fs data=$DIR/s3
    if [[ ! -x "$bin" ]]; then
        bin=$(command -v s3s-fs) || {
            log "s3s-fs not found in $TOOLS/s3s-fs/bin nor on PATH: run scripts/setup.sh --services"
            return 1
        }
    fi
    mkdir -p "$data/$S3_BUCKET"
    if answers "$S3_PORT"; then
        log "S3 already answers on 127.0.0.1:$S3_PORT"
    else
        start_bg "S3 (s3s-fs)" "$DIR/s3.pid" "$DIR/s3.log" "$bin" --host 127.0.0.1 \
            --port "$S3_PORT" --access-key "$S3_KEY_ID" --secret-key "$S3_SECRET" "$data"
        wait_answer "S3 (s3s-fs)" "$S3_PORT" "$DIR/s3.pid" "$DIR/s3.log"
        log "S3 started on 127.0.0.1:$S3_PORT ($data)"
    fi
    echo "export APERTURE_TEST_S3_URL='s3://$S3_BUCKET'"
    echo "export APERTURE_TEST_S3_OPTIONS='aws_endpoint=http://127.0.0.1:$S3_PORT aws_access_key_id=$S3_KEY_ID aws_secret_access_key=$S3_SECRET aws_region=us-east-1 aws_allow_http=true'"
    echo "export APERTURE_TEST_S3_SERVER='$bin'"
}

# Azurite keeps blobs in memory; object_store does not create containers, so the Azure SDK
# installed beside it does.
azurite_start() {
    local modules=$TOOLS/azurite/node_modules data=$DIR/azurite
    if [[ ! -x "$modules/.bin/azurite-blob" ]]; then
        log "azurite not found in $TOOLS/azurite: run scripts/setup.sh --services"
        return 1
    fi
    if answers "$AZURITE_PORT"; then
        log "Azurite already answers on 127.0.0.1:$AZURITE_PORT"
    else
        mkdir -p "$data"
        # Azurite writes its debug files into the current folder.
        (cd "$data" && start_bg Azurite "$DIR/azurite.pid" "$DIR/azurite.log" \
            "$modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" \
            --inMemoryPersistence --disableTelemetry --skipApiVersionCheck)
        wait_answer Azurite "$AZURITE_PORT" "$DIR/azurite.pid" "$DIR/azurite.log"
        log "Azurite started on 127.0.0.1:$AZURITE_PORT"
    fi
    local endpoint="http://127.0.0.1:$AZURITE_PORT/$AZURE_ACCOUNT"
    NODE_PATH=$modules node -e '
        const { BlobServiceClient, StorageSharedKeyCredential } = require("@azure/storage-blob");
        const [endpoint, account, key, name] = process.argv.slice(1);
        const service = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(account, key));
        service.getContainerClient(name).createIfNotExists().then(
            () => {},
            (e) => { console.error(`cannot create container ${name}: ${e.message}`); process.exit(1); });
    ' "$endpoint" "$AZURE_ACCOUNT" "$AZURE_KEY" "$AZURE_CONTAINER" >&2
    echo "export APERTURE_TEST_AZURE_URL='az://$AZURE_CONTAINER'"
    echo "export APERTURE_TEST_AZURE_OPTIONS='azure_storage_account_name=$AZURE_ACCOUNT azure_storage_account_key=$AZURE_KEY azure_storage_endpoint=$endpoint azure_allow_http=true'"
}

case "${1:-start}" in
start)
    cd "$ROOT"
    mkdir -p "$DIR"
    pg_start
    s3_start
    azurite_start
    ;;
stop)
    pg_stop
    stop_bg "S3 (s3s-fs)" "$DIR/s3.pid"
    stop_bg Azurite "$DIR/azurite.pid"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
