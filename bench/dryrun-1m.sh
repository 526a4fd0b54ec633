#!/bin/sh
# `blast send --dry-run` of 1,000,000 recipients into a directory on tmpfs: the work of
# bench/compare.py (about 4 KB, text + HTML, 10 substitutions in each part), rendered,
# MIME-built and written as one file a message. Throughput and peak RSS.
# Target: peak RSS at most 64 MB (memory must not grow with the list).
# Writes the figures to $OUT/dryrun-1m.json (default build/bench).
# Usage: bench/dryrun-1m.sh [BLAST]   (default build/blast; ROWS=1000000, TMPFS=/dev/shm)
set -eu
cd "$(dirname "$0")/.."
BLAST=$(realpath "${1:-build/blast}")
ROWS=${ROWS:-1000000}
TMPFS=${TMPFS:-/dev/shm}
OUT=${OUT:-build/bench}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")

if [ "$(stat -f -c %T "$TMPFS")" != tmpfs ]; then
    echo "dryrun-1m: $TMPFS is not a tmpfs (set TMPFS)" >&2
    exit 1
fi
WORK=$(mktemp -d /tmp/blast-bench-dryrun.XXXXXX)
DIR=$(mktemp -d "$TMPFS/blast-bench-dryrun.XXXXXX")
trap 'rm -rf "$WORK" "$DIR"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

/usr/bin/python3 bench/compare.py --prepare "$WORK" "$ROWS"
size=$(cd "$WORK" && "$BLAST" preview campaign.yml --row 1 | wc -c)
# tmpfs keeps each file in whole pages
page=$(getconf PAGESIZE)
need=$(( ROWS * ((size + page - 1) / page) * page * 11 / 10240 ))
avail=$(df -k --output=avail "$TMPFS" | tail -1 | tr -d ' ')
echo "dry run: $ROWS recipients, ~$size-byte messages, into $DIR (needs ~$((need / 1024)) MB of $((avail / 1024)) MB)"
if [ "$avail" -lt "$need" ]; then
    echo "dryrun-1m: not enough room on $TMPFS; set ROWS lower or TMPFS to a larger tmpfs" >&2
    exit 1
fi

/usr/bin/time -f "%e %U %S %M" -o "$WORK/time" \
    "$BLAST" send "$WORK/campaign.yml" --dry-run "$DIR/eml" --quiet --fresh \
    --journal "$DIR/journal" --report "$DIR/report.json"
read -r wall user sys rss <"$WORK/time"
files=$(find "$DIR/eml" -type f -name '*.eml' | wc -l)
rendered=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["by_status"]["rendered"])' "$DIR/report.json")
bytes=$(du -s -b "$DIR/eml" | cut -f1)
if [ "$files" -ne "$ROWS" ] || [ "$rendered" -ne "$ROWS" ]; then
    echo "dryrun-1m: $files files and $rendered rendered, not $ROWS" >&2
    exit 1
fi
awk -v n="$ROWS" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v b="$bytes" 'BEGIN {
    printf "  %d messages (%.0f MB) in %.1f s: %.0f messages/s; user %.1f s, system %.1f s; peak RSS %.1f MB\n",
        n, b / 1e6, w, n / w, u, s, r / 1024 }'
cat >"$OUT/dryrun-1m.json" <<JSON
{"rows": $ROWS, "message_bytes": $size, "total_bytes": $bytes, "wall_s": $wall,
 "user_s": $user, "sys_s": $sys, "max_rss_kb": $rss, "tmpfs": "$TMPFS"}
JSON
