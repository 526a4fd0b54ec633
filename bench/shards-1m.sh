#!/bin/sh
# One campaign of 1,000,000 recipients (bench/compare.py's work: ~4 KB, text + HTML) sent
# to smtp-sink on loopback by one blast process with 8 connections, then by 4 shard
# processes at once (--shard I/4, 2 connections each) to the same sink.
# Target: the shards' total rate at least 0.9x the single process's.
# Writes the figures to $OUT/shards-1m.json (default build/bench).
# Usage: bench/shards-1m.sh [BLAST]   (default build/blast; ROWS=1000000, SHARDS=4,
#        CONNECTIONS=8, ROUNDS=1)
set -eu
cd "$(dirname "$0")/.."
BLAST=$(realpath "${1:-build/blast}")
OUT=${OUT:-build/bench}
mkdir -p "$OUT"
exec /usr/bin/python3 bench/shards_bench.py "$BLAST" "$(realpath "$OUT")" \
    --rows "${ROWS:-1000000}" --shards "${SHARDS:-4}" --connections "${CONNECTIONS:-8}" \
    --rounds "${ROUNDS:-1}"
