#!/usr/bin/env bash
# Runs a command with the Samba AD test DC (LDAP + KDC) and the Kerberos backend up, for
# tests/ldap.rs and tests/kerberos.rs; stops the DC afterwards
# whatever the command's outcome, and exits with the command's status.
#
#   bash scripts/with-ad.sh cargo test --locked
#
# The DC lives in $CERTGATE_AD_DIR (default target/samba-ad, provisioned on first use: ~3-9 s
# with the packages installed, plus ~20 s for apt on a fresh machine). It listens on $CERTGATE_AD_IP (default
# 127.0.0.1) ports 389/636/3268/3269 and 88/464 (KDC), so only one such run can be active per
# address (CERTGATE_AD_IP=127.0.0.N picks another loopback address; Apache takes a free port).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

AD_DIR=${CERTGATE_AD_DIR:-$PWD/target/samba-ad}
stop_dc() {
  bash scripts/samba-kdc.sh stop "$AD_DIR" || true
  bash scripts/samba-ad.sh stop "$AD_DIR" || true
}
trap stop_dc EXIT

env_lines=$(bash scripts/samba-ad.sh start "$AD_DIR" "${CERTGATE_AD_IP:-127.0.0.1}")
eval "$env_lines"
# The KDC's side (tests/kerberos.rs): delegation accounts, keytabs, krb5.conf, Apache backend.
kdc_lines=$(bash scripts/samba-kdc.sh start "$AD_DIR")
eval "$kdc_lines"
set +e
"$@"
status=$?
set -e
exit "$status"
