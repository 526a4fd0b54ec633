#!/bin/sh
# A campaign of 10,000,000 recipients (bench/compare.py's work) sent to smtp-sink on
# loopback as 4 shards at once (--shard I/4, 2 connections each), then their reports
# merged (blast report --merge) and the merged report read (blast report --format json).
# Targets: each shard's peak RSS <= 64 MB; the merge's <= 64 MB; the merged report reads
# as any report. Needs about 25 GB of free disk under TMPDIR (journals and reports).
# Writes the figures to $OUT/shards-10m.json (default build/bench).
# Usage: bench/shards-10m.sh [BLAST]   (default build/blast; ROWS=10000000, SHARDS=4,
#        CONNECTIONS=8)
set -eu
cd "$(dirname "$0")/.."
BLAST=$(realpath "${1:-build/blast}")
OUT=${OUT:-build/bench}
mkdir -p "$OUT"
exec /usr/bin/python3 bench/shards_bench.py "$BLAST" "$(realpath "$OUT")" \
    --rows "${ROWS:-10000000}" --shards "${SHARDS:-4}" --connections "${CONNECTIONS:-8}" \
    --no-single --merge --name shards-10m
