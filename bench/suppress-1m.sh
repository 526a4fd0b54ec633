#!/bin/sh
# `blast check` over a 1,000,000-row list, without and then with a suppression
# database of 1,000,000 entries (half of them on the list), ROUNDS times alternating:
# the medians and what the database adds. Target: at most 20% more time.
# Usage: bench/suppress-1m.sh [BLAST]   (default build/blast; ROUNDS, default 3)
set -eu
cd "$(dirname "$0")/.."
BLAST=$(realpath "${1:-build/blast}")
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d /tmp/blast-bench-suppress.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

/usr/bin/python3 - "$WORK" <<'PY'
import sys
work = sys.argv[1]
with open(f"{work}/list.csv", "w") as f:
    f.write("email,first_name,last_name,city,country,plan,signup,score\n")
    for i in range(1000000):
        f.write(f"subscriber.{i:07d}@mail{i % 97:02d}.example.com,Firstname{i},"
                f"Lastname{i % 1000},City number {i % 5000},Country {i % 200},"
                f"plan-{i % 3},2024-01-{i % 28 + 1:02d},{i % 100}\n")
# every other subscriber of the list, and as many addresses that are not on it
with open(f"{work}/suppress.txt", "w") as f:
    for i in range(1000000):
        f.write(f"subscriber.{i:07d}@mail{i % 97:02d}.example.com\n" if i % 2 == 0 else
                f"someone.else.{i:07d}@elsewhere.example.net\n")
PY
/usr/bin/time -f "import of 1,000,000 addresses: %e s, peak RSS %M KB" \
    "$BLAST" suppress "$WORK/suppression.db" import "$WORK/suppress.txt" --class hard \
    --rule bench 2>&1 | grep -v "addresses imported"
for with in no yes; do
    {
        echo "name: bench-suppress"
        echo "from: news@acme.example"
        echo 'subject: "Hi {{first_name}}"'
        echo "recipients: {path: list.csv}"
        echo "body: {text: body.txt}"
        echo "relays: [{host: 127.0.0.1, tls: none}]"
        [ "$with" = yes ] && echo "suppression_db: suppression.db"
    } >"$WORK/campaign-$with.yml"
done
echo 'Hello {{first_name}} {{last_name}} from {{city}}, {{country}}' >"$WORK/body.txt"

: >"$WORK/times"
i=0
while [ "$i" -lt "$ROUNDS" ]; do
    for with in no yes; do
        /usr/bin/time -f "$with %e %M" -a -o "$WORK/times" \
            taskset -c 0 "$BLAST" check "$WORK/campaign-$with.yml" >"$WORK/out-$with" 2>&1 || true
    done
    i=$((i + 1))
done
grep -E "suppressed|recipients" "$WORK/out-yes" | head -3
/usr/bin/python3 - "$WORK/times" <<'PY'
import statistics, sys
t = {"no": [], "yes": []}
rss = {"no": [], "yes": []}
for line in open(sys.argv[1]):
    w, s, kb = line.split()
    t[w].append(float(s))
    rss[w].append(int(kb))
a, b = statistics.median(t["no"]), statistics.median(t["yes"])
print(f"check without the database: {a:.2f} s (runs {t['no']}), peak RSS {max(rss['no'])} KB")
print(f"check with 1,000,000 entries: {b:.2f} s (runs {t['yes']}), peak RSS {max(rss['yes'])} KB")
print(f"the database adds {100 * (b / a - 1):+.1f}% (target: at most +20%)")
PY
