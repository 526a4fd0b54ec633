#!/bin/sh
# A campaign of 1,000,000 recipients sent to smtp-sink on loopback, then its report made
# into the HTML page (blast report --format html), Prometheus metrics and the text view,
# each timed with its peak RSS. Target: the page in <= 10 s with <= 64 MB.
# Writes the figures to $OUT/report-page-1m.json (default build/bench).
# Usage: bench/report-page-1m.sh [BLAST]   (default build/blast; ROWS=1000000, DOMAINS=97;
#        DOMAINS=100000 for a long tail of domains; KEEP=DIR keeps and reuses the report)
set -eu
cd "$(dirname "$0")/.."
BLAST=$(realpath "${1:-build/blast}")
OUT=${OUT:-build/bench}
mkdir -p "$OUT"
exec /usr/bin/python3 bench/report_page_bench.py "$BLAST" "$(realpath "$OUT")" \
    --rows "${ROWS:-1000000}" --domains "${DOMAINS:-97}" \
    --name "${NAME:-report-page-1m}" ${KEEP:+--keep "$KEEP"}
