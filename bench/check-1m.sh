#!/bin/sh
# `blast check` over a 1,000,000-row list (8 columns, about 100 bytes a row):
# wall time, CPU time and peak memory. Target: under 3 s on one core, under 32 MB.
# Usage: bench/check-1m.sh [BLAST]   (default build/blast)
set -eu
cd "$(dirname "$0")/.."
BLAST=${1:-build/blast}
WORK=$(mktemp -d /tmp/blast-bench-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

/usr/bin/python3 - "$WORK/list.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email,first_name,last_name,city,country,plan,signup,score\n")
    for i in range(1000000):
        f.write(f"subscriber.{i:07d}@mail{i % 97:02d}.example.com,Firstname{i},"
                f"Lastname{i % 1000},City number {i % 5000},Country {i % 200},"
                f"plan-{i % 3},2024-01-{i % 28 + 1:02d},{i % 100}\n")
PY
cat >"$WORK/campaign.yml" <<'YML'
name: bench-check
from: news@acme.example
subject: "Hi {{first_name}}"
recipients: {path: list.csv}
body: {text: body.txt}
relays: [{host: 127.0.0.1, tls: none}]
YML
echo 'Hello {{first_name}} {{last_name}} from {{city}}, {{country}}' >"$WORK/body.txt"

size=$(stat -c %s "$WORK/list.csv")
echo "list: 1000000 rows, $size bytes ($((size / 1000000)) bytes a row)"
# one core, as the target says
/usr/bin/time -f "wall %e s, user %U s, system %S s, peak RSS %M KB" \
    taskset -c 0 "$BLAST" check "$WORK/campaign.yml" 2>&1 | grep -E "recipients|result|wall"
