#!/usr/bin/env bash
# The whole test suite: unit tests, end-to-end tests on real sockets, and the Active Directory
# tests against a throwaway Samba AD DC on loopback (installed from Debian's packages and
# provisioned on first use; run as root). Extra arguments go to `cargo test`.
#
#   bash scripts/test.sh
#   bash scripts/test.sh --test proxy
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/with-ad.sh cargo test --locked "$@"
