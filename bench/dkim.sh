#!/bin/sh
# DKIM signing cost: 20,000 messages (~4 KB, text + HTML) sent to smtp-sink on
# loopback, unsigned, signed with RSA-2048 and signed with Ed25519; messages per
# second and CPU time of each run. For comparison, what OpenSSL alone signs with
# RSA-2048 in a second (`openssl speed`, one core, times the cores blast uses).
# Usage: bench/dkim.sh [BLAST]   (default build/blast)
set -eu
cd "$(dirname "$0")/.."
BLAST=$(realpath "${1:-build/blast}")
N=${N:-20000}
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

run() { # NAME DKIM-YAML
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
    (cd "$WORK" && /usr/bin/time -f "%e %U %S" -o "$WORK/$1.time" \
        "$BLAST" send "$1.yml" --quiet --fresh --journal "$1.journal" --report "$1.json" \
        >/dev/null 2>"$WORK/$1.err") || { cat "$WORK/$1.err"; exit 1; }
    read -r wall user sys <"$WORK/$1.time"
    echo "$1 $wall $user $sys" | awk -v n="$N" \
        '{ printf "%-10s %6d messages in %6.2f s: %7.0f messages/s (user %.2f s, system %.2f s)\n",
           $1, n, $2, n / $2, $3, $4 }'
}

echo "blast send to smtp-sink, $N messages, $(nproc) cores:"
run unsigned ""
run rsa2048 "dkim: {domain: acme.example, selector: rsa, key: rsa.pem}"
run ed25519 "dkim: {domain: acme.example, selector: ed, key: ed.pem, algorithm: ed25519-sha256}"

echo "openssl speed -seconds 3 rsa2048 (one core):"
openssl speed -seconds 3 rsa2048 2>/dev/null | awk -v cores="$(nproc)" \
    '/^rsa 2048 bits/ { printf "  %s sign/s on one core, about %.0f on %d cores\n", $6, $6 * cores, cores }'
