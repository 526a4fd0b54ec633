#!/bin/sh
# blast side by side with smtp-source, Nodemailer's pool, swaks and curl on the same
# work (bench/compare.py; docs/performance.md): installs the peers that are missing,
# then runs the alternating rounds and prints the table. Settings come from the
# environment: ROUNDS, CONNS, N, N_RTT_PER_CONN, N_PROC, N_PROC_RTT, RTT_MS, PEERS,
# PARTS, OUT (see bench/compare.py).
# Usage: bench/compare.sh [BLAST]   (default build/blast)
set -eu
cd "$(dirname "$0")/.."
BLAST=$(realpath "${1:-build/blast}")
export BLAST
bench/peers.sh
exec /usr/bin/python3 bench/compare.py
