#!/bin/sh
# DKIM signing cost, two ways.
#  - In process, one core (bench/render_bench.c): render + MIME build + signing,
#    unsigned, RSA-2048 and Ed25519, against `openssl speed` on one core.
#  - Sending: 20,000 messages (~4 KB, text + HTML) to smtp-sink on loopback over 4
#    connections, unsigned, Ed25519 and RSA-2048, alternately for ROUNDS rounds
#    (default 5); medians of messages per second and CPU time, and the targets:
#    Ed25519 at most 15% below unsigned (judged on the median of each round's
#    Ed25519/unsigned pair, shown with the ratio of the two medians); RSA-2048
#    against what `openssl speed -multi` signs on all cores (the receiving server
#    shares them).
# Usage: bench/dkim.sh [BLAST]   (default build/blast; render-bench from its directory)
set -eu
cd "$(dirname "$0")/.."
BLAST=$(realpath "${1:-build/blast}")
BUILD=$(dirname "${1:-build/blast}")
N=${N:-20000}
ROUNDS=${ROUNDS:-5}
CORES=$(nproc)
WORK=$(mktemp -d /tmp/blast-bench-dkim.XXXXXX)
SINK=
cleanup() {
    [ -n "$SINK" ] && kill "$SINK" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rsa.pem" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$WORK/ed.pem" 2>/dev/null
chmod 600 "$WORK"/*.pem
/usr/bin/python3 - "$WORK" "$N" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
with open(f"{d}/list.csv", "w") as f:
    f.write("email,first_name,city\n")
    for i in range(n):
        f.write(f"subscriber.{i:06d}@mail{i % 97:02d}.example.com,Firstname{i},City {i % 500}\n")
para = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
        "incididunt ut labore et dolore magna aliqua.\n") * 12
with open(f"{d}/body.txt", "w") as f:
    f.write("Hello {{first_name}} from {{city}},\n\n" + para)
with open(f"{d}/body.html", "w") as f:
    f.write("<p>Hello {{first_name}} from {{city}},</p>\n<p>" + para + "</p>\n")
PY
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/sbin/smtp-sink -u nobody 127.0.0.1:"$PORT" 1000 &
SINK=$!
sleep 0.5

campaign() { # NAME DKIM-YAML
    cat >"$WORK/$1.yml" <<YML
name: bench-dkim-$1
from: "Acme News <news@acme.example>"
subject: "Hi {{first_name}}"
recipients: {path: list.csv}
body: {text: body.txt, html: body.html}
list_unsubscribe: {url: "https://acme.example/u?e={{email}}", one_click: true}
$2
relays: [{host: 127.0.0.1, port: $PORT, tls: none, connections: 4, messages_per_connection: 100000}]
YML
}

run() { # NAME ROUND: one send; appends "NAME msgs/s user+sys ROUND" to runs.txt
    (cd "$WORK" && /usr/bin/time -f "%e %U %S" -o "$WORK/$1.time" \
        "$BLAST" send "$1.yml" --quiet --fresh --journal "$1.journal" --report "$1.json" \
        >/dev/null 2>"$WORK/$1.err") || { cat "$WORK/$1.err"; exit 1; }
    delivered=$(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["summary"]["by_status"]["delivered"])' "$WORK/$1.json")
    [ "$delivered" = "$N" ] || { echo "dkim: $1 delivered $delivered of $N" >&2; exit 1; }
    read -r wall user sys <"$WORK/$1.time"
    echo "$1 $wall $user $sys" | awk -v n="$N" -v r="$2" '{ printf "%s %.1f %.3f %s\n", $1, n / $2, ($3 + $4) * 10000 / n, r }' \
        >>"$WORK/runs.txt"
}

campaign unsigned ""
campaign rsa2048 "dkim: {domain: acme.example, selector: rsa, key: rsa.pem}"
campaign ed25519 "dkim: {domain: acme.example, selector: ed, key: ed.pem, algorithm: ed25519-sha256}"

echo "in process, one core: render + MIME build + signing, 20,000 messages"
make --no-print-directory BUILD="$BUILD" "$BUILD/render-bench" >/dev/null
RENDER=$(realpath "$BUILD/render-bench")
for name in unsigned rsa2048 ed25519; do
    printf "  %-9s " "$name"
    (cd "$WORK" && taskset -c 0 "$RENDER" "$name.yml" 20000) |
        awk '{ printf "%8.0f messages/s (%.1f us a message)\n", $6, 1e6 / $6 }'
done
echo "openssl speed, one core:"
openssl speed -seconds 3 rsa2048 ed25519 2>/dev/null | awk '
    /^rsa 2048 bits/ { printf "  rsa2048 %8.0f sign/s (%.1f us)\n", $6, 1e6 / $6 }
    /Ed25519/ && /EdDSA/ { printf "  ed25519 %8.0f sign/s (%.1f us)\n", $(NF-1), 1e6 / $(NF-1) }'

echo "blast send to smtp-sink, $N messages, 4 connections, $CORES cores, $ROUNDS rounds:"
: >"$WORK/runs.txt"
for r in $(seq "$ROUNDS"); do
    for name in unsigned ed25519 rsa2048; do run "$name" "$r"; done
done
multi=$(openssl speed -multi "$CORES" -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print $6 }')
/usr/bin/python3 - "$WORK/runs.txt" "$multi" "$CORES" <<'PY'
import statistics, sys
runs, multi, cores = sys.argv[1], float(sys.argv[2]), sys.argv[3]
by, rounds = {}, {}
for line in open(runs):
    name, rate, cpu, r = line.split()
    by.setdefault(name, []).append((float(rate), float(cpu)))
    rounds.setdefault(r, {})[name] = float(rate)
med = {n: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v)) for n, v in by.items()}
for n in ("unsigned", "rsa2048", "ed25519"):
    rates = ", ".join(f"{r:.0f}" for r, _ in by[n])
    print(f"  {n:<9} {med[n][0]:7.0f} messages/s median, {med[n][1]:.2f} CPU s / 10k messages (runs: {rates})")
u, rsa, ed = med["unsigned"][0], med["rsa2048"][0], med["ed25519"][0]
# each round's Ed25519 run against the unsigned run just before it: the machine's
# slow drifts (other load, the disk) cancel out of the pair
below = [100 * (1 - v["ed25519"] / v["unsigned"]) for v in rounds.values()]
print(f"  ed25519: {statistics.median(below):.1f}% below unsigned, median of the rounds' pairs "
      f"({', '.join(f'{b:.1f}' for b in below)}); {100 * (1 - ed / u):.1f}% between the medians "
      f"(target: at most 15%)")
print(f"  openssl speed -multi {cores} rsa2048: {multi:.0f} sign/s; rsa2048 sends "
      f"{100 * rsa / multi:.0f}% of it (target 80%; unsigned sending itself is {100 * u / multi:.0f}%)")
PY
