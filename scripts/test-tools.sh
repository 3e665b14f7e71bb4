#!/usr/bin/env bash
# Installs the real programs the end-to-end tests drive when they are missing: goaccess (reads
# the W3C logs, tests/w3c.rs) and chromium (renders the admin status page, tests/status_page.rs).
set -euo pipefail
missing=()
command -v goaccess >/dev/null || missing+=(goaccess)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    echo "test-tools.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 \
        --no-install-recommends "${missing[@]}" >/dev/null
fi
