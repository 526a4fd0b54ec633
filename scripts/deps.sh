#!/bin/sh
# Install the Debian 12 packages that blast's build, tests and demo need.
# Idempotent: does nothing when everything is there. Runs as root without a
# prompt (CI, a fresh machine); as another user it uses sudo if it can, or says
# what to install.
#
#   scripts/deps.sh          what `make test` and `make demo` need
#   scripts/deps.sh --fuzz   what `make fuzz` needs besides: clang 14 and its
#                            runtime libraries, which hold libFuzzer and the
#                            sanitizers (-fsanitize=fuzzer); `make test` never needs them
set -eu

# The last line is what the packaging's tests use: man pages (mandoc -Tlint, man -l),
# the shell completions (bash-completion, zsh), the Debian package (debhelper,
# dpkg-dev, fakeroot, lintian) and the container's build steps in a chroot
# (debootstrap).
PKGS="gcc make pkg-config libc6-dev
libssl-dev libsodium-dev libyaml-dev libjansson-dev libcsv-dev libcurl4-openssl-dev libidn2-dev
libsqlite3-dev libgmime-3.0-dev libhiredis-dev zlib1g-dev libc-ares-dev libpsl-dev
libcriterion-dev dnsmasq-base tzdata
postfix libsasl2-modules libsasl2-modules-db sasl2-bin openssl ca-certificates redis-server
dovecot-imapd dovecot-pop3d dovecot-lmtpd munge slurmctld slurmd slurm-client
python3 python3-aiosmtpd python3-jsonschema python3-dkim python3-cryptography python3-yaml
python3-gi gir1.2-gmime-3.0 libmime-tools-perl libmailtools-perl spamassassin
cppcheck clang-format valgrind procps shellcheck
prometheus chromium python3-pil
mandoc man-db bash-completion zsh debhelper dpkg-dev fakeroot lintian debootstrap"

FUZZ_PKGS="clang libclang-rt-14-dev"

if [ "${1:-}" = "--fuzz" ]; then
    PKGS="$PKGS $FUZZ_PKGS"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "deps: these Debian packages are missing:$missing" >&2
    echo "deps: run 'make deps' as root (or install them) and try again" >&2
    exit 1
fi

# Postfix must not configure or start a system mail server: blast's tests and demo
# run private instances of their own on loopback.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
# Nor may Dovecot or Redis start as a system service: the tests start private instances. Where
# the machine has no policy of its own, one that denies every service start is put in
# place for the install and taken away after it.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
fi
status=0
$SUDO apt-get update -q </dev/null || status=$?
# shellcheck disable=SC2086
[ "$status" -ne 0 ] || $SUDO apt-get install -y -q --no-install-recommends $missing </dev/null ||
    status=$?
[ -z "$own_policy" ] || $SUDO rm -f "$policy"
exit "$status"
