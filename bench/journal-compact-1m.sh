#!/bin/sh
# What a campaign of 1,000,000 recipients leaves on disk: the journal before and after
# `blast journal compact` (time, peak RSS, bytes a recipient; also with real relays'
# replies), the report rebuilt from the compacted journal compared with the one before,
# and the send's time with a plain and a .json.gz report. Targets: compaction <= 10 s and
# <= 64 MB, <= 150 bytes a delivered recipient; a .gz report at most 15% slower and at
# most a tenth the size. Writes the figures to $OUT/journal-compact-1m.json (default
# build/bench).
# Usage: bench/journal-compact-1m.sh [BLAST]   (default build/blast; ROWS=1000000, KEEP=DIR)
set -eu
cd "$(dirname "$0")/.."
BLAST=$(realpath "${1:-build/blast}")
OUT=${OUT:-build/bench}
mkdir -p "$OUT"
exec /usr/bin/python3 bench/journal_bench.py "$BLAST" "$(realpath "$OUT")" \
    --rows "${ROWS:-1000000}" --name "${NAME:-journal-compact-1m}" ${KEEP:+--keep "$KEEP"}
