#!/bin/sh
# A report's recipients read into struct outcome, the old way and the new, each once
# under /usr/bin/time: through jansson trees (reportread_file() and
# reportread_outcome(), what `blast report` does for its text summary) and through
# the tape (reportread_file_outcomes(), reportread_next_outcome()); then `blast
# report` itself, text and CSV. Target: 1,000,000 recipients into struct outcome in
# at most 4 s.
# Usage: bench/report-read.sh [BUILD] [REPORT.json]
#   (default build; without a report, one of N recipients (default 1,000,000) is
#   written to a temporary directory first, in the writer's layout, ~620 MB)
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
REPORT=${2:-}
N=${N:-1000000}
WORK=$(mktemp -d /tmp/blast-bench-report-read.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

make --no-print-directory BUILD="$BUILD" "$BUILD/blast" "$BUILD/report-read-bench" >/dev/null
if [ -z "$REPORT" ]; then
    REPORT="$WORK/r.json"
    /usr/bin/python3 - "$REPORT" "$N" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write('{"schema_version": 1,\n"campaign": {"name":"bench","file":"c.yml","dry_run":false},\n'
            '"recipients": [\n')
    for i in range(n):
        t = "2026-12-05T10:51:42.%03dZ" % (i % 1000)
        f.write('%s{"email":"subscriber.%07d@mail%02d.example.com","row":%d,"status":"delivered",'
                '"code":250,"enhanced_code":"2.0.0","reply":"Ok","step":"end of data","detail":null,'
                '"relay":"127.0.0.1","attempts":1,"message_id":"<%024x.6b13ecbe@acme.example>",'
                '"queue_id":null,"size":%d,"first_attempt":"%s","last_attempt":"%s","history":'
                '[{"time":"%s","status":"delivered","relay":"127.0.0.1","host":"127.0.0.1",'
                '"port":25,"tls":null,"cipher":null,"step":"end of data","code":250,'
                '"enhanced_code":"2.0.0","reply":"Ok","queue_id":null,"detail":null}]}'
                % (",\n" if i else "", i, i % 100, i + 1, i * 7919, 4200 + i % 100, t, t, t))
    f.write('\n],\n"summary": {"total": %d}\n}\n' % n)
PY
fi
ls -l "$REPORT"
cat "$REPORT" >/dev/null # from the page cache for every run
for mode in json tape pull; do
    /usr/bin/time -f "  wall %e s, peak RSS %M kB" "$BUILD/report-read-bench" "$mode" "$REPORT"
done
echo "blast report (text)"
/usr/bin/time -f "  wall %e s, peak RSS %M kB" "$BUILD/blast" report "$REPORT" >/dev/null
echo "blast report --format csv"
/usr/bin/time -f "  wall %e s, peak RSS %M kB" "$BUILD/blast" report --format csv "$REPORT" \
    >/dev/null
