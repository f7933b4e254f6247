#!/bin/sh
# Installs the Debian 12 packages the test infrastructure needs (run as root).
#
#   sh tests/support/install-system-deps.sh
#
# Non-interactive; starts no service (a policy-rc.d refuses every start while the
# packages install) and stops any that a previous install left running; safe to run
# twice.  The tests start their own nginx and Dovecot with private configurations.
set -eu

PACKAGES="
    nginx
    libnginx-mod-mail
    dovecot-core
    dovecot-imapd
    dovecot-pop3d
    curl
    openssl
    redis-server
    haproxy
    ca-certificates
    procps
    iproute2
    libssl-dev
    build-essential
    python3-dev
    prometheus
    chromium
"

if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps.sh: must run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

POLICY=/usr/sbin/policy-rc.d
SAVED=""
if [ -e "$POLICY" ]; then
    SAVED=$(mktemp)
    cp -p "$POLICY" "$SAVED"
fi
restore_policy() {
    if [ -n "$SAVED" ]; then
        mv -f "$SAVED" "$POLICY"
    else
        rm -f "$POLICY"
    fi
}
trap restore_policy EXIT INT TERM
# 101 = "action forbidden by policy": invoke-rc.d starts nothing during the install.
printf '#!/bin/sh\nexit 101\n' > "$POLICY"
chmod 755 "$POLICY"

apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $PACKAGES

# The system's own nginx or Dovecot must not keep running (a machine where they were
# started before, or an init that ignored the policy).  Only the daemons named by the
# system pid files are stopped: test instances elsewhere are left alone.
for pidfile in /run/nginx.pid /run/dovecot/master.pid; do
    if [ -s "$pidfile" ]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
done

test -e /usr/lib/nginx/modules/ngx_mail_module.so
test -x /usr/lib/dovecot/imap && test -x /usr/lib/dovecot/pop3
echo "install-system-deps.sh: system packages ready"
