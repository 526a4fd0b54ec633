#!/bin/sh
# Install the peers of bench/compare.py, idempotently and without a prompt:
# Postfix (smtp-sink, smtp-source, smtpd), swaks, curl and GNU time from Debian, and
# Nodemailer from npm into bench/node/ at the version its package-lock.json pins.
# Node.js 20 or newer must be on the machine (Nodemailer 10 needs it).
set -eu
cd "$(dirname "$0")"

PKGS="postfix swaks curl time procps"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "bench: installing:$missing"
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "bench: these Debian packages are missing:$missing; install them as root" >&2
        exit 1
    fi
    # As scripts/deps.sh: Postfix must not configure or start a system mail server.
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q </dev/null
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing </dev/null
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "bench: Node.js 20+ and npm are needed for the Nodemailer peer" >&2
    exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    echo "bench: Node.js $(node --version) is too old for Nodemailer 10 (20 or newer)" >&2
    exit 1
fi
want=$(node -p 'require("./node/package-lock.json").packages["node_modules/nodemailer"].version')
have=$(node -p 'try { require("./node/node_modules/nodemailer/package.json").version } catch (e) { "" }')
if [ "$want" != "$have" ]; then
    echo "bench: installing nodemailer $want into bench/node/"
    (cd node && npm ci --no-audit --no-fund --loglevel=error </dev/null)
fi
