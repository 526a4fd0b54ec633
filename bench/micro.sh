#!/bin/sh
# The micro-benchmarks, one after another: what an fdatasync costs (the journal's),
# `check` over 1,000,000 rows, rendering and MIME building per core, DKIM signing
# against `openssl speed`, and a 1,000,000-recipient dry run to tmpfs. What they
# print is also kept in $OUT/micro.txt.
# Usage: bench/micro.sh [BUILD]   (default build; OUT defaults to BUILD/bench)
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
OUT=${OUT:-$BUILD/bench}
export OUT
mkdir -p "$OUT"
LOG="$OUT/micro.txt"
: >"$LOG"
STATUS=$(mktemp)
trap 'rm -f "$STATUS"' EXIT

step() { # TITLE COMMAND...
    title=$1
    shift
    echo "== $title" | tee -a "$LOG"
    { "$@" 2>&1; echo $? >"$STATUS"; } | tee -a "$LOG"
    if [ "$(cat "$STATUS")" -ne 0 ]; then
        echo "micro: $title failed" >&2
        exit 1
    fi
}

step "journal durability: append + fdatasync" bench/fsync.sh /tmp /dev/shm
step "check over 1,000,000 rows" bench/check-1m.sh "$BUILD/blast"
step "render + MIME build, one core" bench/render.sh "$BUILD"
step "DKIM signing" bench/dkim.sh "$BUILD/blast"
step "1,000,000-recipient dry run to tmpfs" bench/dryrun-1m.sh "$BUILD/blast"
