#!/usr/bin/env bash
# Installs what a build with the `kerberos` feature needs when it is missing: the feature links
# MIT's GSS-API, and libgssapi-sys generates its bindings at build time from the headers in
# libkrb5-dev with bindgen (libclang). A plain `cargo build` needs neither.
set -euo pipefail
if [ ! -f /usr/include/gssapi/gssapi_ext.h ] || ! ldconfig -p | grep -q 'libclang.*\.so'; then
    echo "build-deps.sh: installing libkrb5-dev libclang-dev" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 \
        --no-install-recommends libkrb5-dev libclang-dev >/dev/null
fi
