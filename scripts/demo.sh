#!/bin/sh
# make demo: start a throwaway Postfix relay on 127.0.0.1:2525 (STARTTLS required,
# SASL AUTH), send campaigns/example.yml through it with blast, show the report's
# summary and where the delivered messages are, and stop the relay.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DEMO=build/demo           # campaigns/example.yml trusts build/demo/relay/tls/ca.pem
PY=/usr/bin/python3

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: the local relay is a private Postfix instance, which needs root" >&2
    exit 1
fi
$PY scripts/localrelay.py stop "$DEMO/relay" 2>/dev/null || true
rm -rf "$DEMO"
mkdir -p "$DEMO"
$PY scripts/localrelay.py start "$DEMO/relay" --port 2525 >/dev/null
trap '$PY scripts/localrelay.py stop "$DEMO/relay"' EXIT INT TERM

BLAST_DEMO_PASSWORD=$(cat "$DEMO/relay/password")
export BLAST_DEMO_PASSWORD
# the example's recipients are fictional: no DNS lookup of their domains leaves the
# machine (docs/campaign.md, "Providers")
BLAST_DNS_SERVERS=${BLAST_DNS_SERVERS:-off}
export BLAST_DNS_SERVERS
echo "==> Postfix relay on 127.0.0.1:2525: STARTTLS required, AUTH as 'demo'"
echo "==> $BUILD/blast send campaigns/example.yml --report $DEMO/report.json --journal $DEMO/example.journal --fresh"
status=0
"$BUILD/blast" send campaigns/example.yml --report "$DEMO/report.json" \
    --journal "$DEMO/example.journal" --fresh || status=$?

if [ -f "$DEMO/report.json" ]; then
    echo
    echo "==> $BUILD/blast report $DEMO/report.json"
    "$BUILD/blast" report "$DEMO/report.json" || status=$?
fi

$PY - "$DEMO" <<'PY'
import glob, json, os, sys, time
demo = sys.argv[1]
report = json.load(open(os.path.join(demo, "report.json"), encoding="utf-8"))
s = report["summary"]
maildir = os.path.join(demo, "relay", "mail", "catchall", "new")
want = s["by_status"]["delivered"]
deadline = time.monotonic() + 30
while len(glob.glob(maildir + "/*")) < want and time.monotonic() < deadline:
    time.sleep(0.2)
print()
print("==> the first recipients in the report")
for r in report["recipients"][:3]:
    print("    %-24s %-9s %s %s" % (r["email"], r["status"], r["code"], r["reply"]))
print("    ...")
print()
files = sorted(glob.glob(maildir + "/*"))
print("==> %d messages arrived in the relay's Maildir, %s/" % (len(files), maildir))
if files:
    print("    one of them: less %s" % files[0])
PY
exit $status
