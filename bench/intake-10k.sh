#!/bin/sh
# `blast bounces` over a bounce mailbox of 10,000 messages: a private Dovecot on
# loopback holds one report per recipient of a campaign that was really sent (to
# smtp-sink, so that its journal and VERP envelope senders are real): 80% DSNs 5.1.1,
# 8% 4.2.2 delayed, 7% 5.7.1, 5% ARF complaints, about 3 KB each. Timed with
# /usr/bin/time -v: the whole intake (login, UID SEARCH, one UID FETCH a message,
# attribution, the database, UID STORE + UID EXPUNGE a batch), after: delete.
# Targets: at least 500 messages/s, peak RSS at most 64 MB.
# Writes the figures to $OUT/intake-10k.json (intake-10k-pop3.json with --pop3).
# Usage: bench/intake-10k.sh [--pop3] [BLAST]   (default build/blast;
#        MESSAGES=10000; PERF=FILE: perf record -a -g for the time of the intake)
# Needs Dovecot (dovecot-imapd, dovecot-pop3d) and Postfix's smtp-sink.
set -eu
cd "$(dirname "$0")/.."
POP3=
if [ "${1:-}" = --pop3 ]; then
    POP3=--pop3
    shift
fi
BLAST=$(realpath "${1:-build/blast}")
MESSAGES=${MESSAGES:-10000}
OUT=${OUT:-build/bench}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")

set -- "$BLAST" "$OUT" --messages "$MESSAGES"
[ -n "$POP3" ] && set -- "$@" --pop3
[ -n "${PERF:-}" ] && set -- "$@" --perf "$(realpath "$PERF")"
exec /usr/bin/python3 bench/intake_bench.py "$@"
