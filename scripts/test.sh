#!/usr/bin/env bash
# The whole test suite: unit tests, end-to-end tests on real sockets, and the Active Directory
# tests against a throwaway Samba AD DC on loopback (installed from Debian's packages and
# provisioned on first use; run as root). Extra arguments go to `cargo test`.
#
# Kerberos to the backend is built in (`--features kerberos`; scripts/build-deps.sh installs
# what that build needs). A full run (no arguments) then runs the container test,
# scripts/container-test.sh: it builds the image from docker/Dockerfile with the debug binary
# `cargo test` just built and proves a request with a client certificate goes through the
# running container (podman; installed on first use), then scripts/kube-test.sh, which plays
# deploy/kubernetes/certgate.yaml with the same image, and scripts/compose-test.sh
# (docker/compose.yml with podman-compose, Samba AD included). CERTGATE_SKIP_CONTAINER_TEST=1
# skips all three; a filtered run (any arguments) too.
#
#   bash scripts/test.sh
#   bash scripts/test.sh --test proxy
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-tools.sh
# tests/cli.rs opens the demo's PFX files with the openssl command; the revocation tests
# (tests/revocation*.rs) run `openssl ca`/`openssl ocsp` (under `faketime` for OCSP answers
# from the past or the future) and a Python CRL distribution point; tests/wire.rs counts the
# segments a client socket received with `ss` (iproute2).
if ! command -v openssl >/dev/null || ! command -v python3 >/dev/null ||
    ! command -v faketime >/dev/null || ! command -v ss >/dev/null; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 \
        openssl python3 faketime iproute2 >/dev/null
fi
# Kerberos to the backend is built in for the tests: its build dependencies.
bash scripts/build-deps.sh
# --lib --bins --tests: there are no doc tests, and an empty doc-test run would be the last
# line of the output. Everything runs with Kerberos built in (tests/kerberos*.rs need it).
if [ $# -gt 0 ]; then
    bash scripts/with-ad.sh cargo test --locked --features kerberos "$@"
else
    bash scripts/with-ad.sh cargo test --locked --features kerberos --lib --bins --tests
fi

if [ $# -gt 0 ]; then
    echo "test.sh: container test skipped (filtered run: $*)" >&2
elif [ "${CERTGATE_SKIP_CONTAINER_TEST:-0}" = 1 ]; then
    echo "test.sh: WARNING: container test SKIPPED (CERTGATE_SKIP_CONTAINER_TEST=1)" >&2
else
    # cargo test builds the certgate binary for the integration tests (CARGO_BIN_EXE_certgate).
    bash scripts/container-test.sh "${CARGO_TARGET_DIR:-target}/debug/certgate"
    # The Kubernetes manifest under podman kube play, reusing the image just built.
    bash scripts/kube-test.sh "${CARGO_TARGET_DIR:-target}/debug/certgate"
    # docker/compose.yml with podman-compose: certgate, the demo backend and the Samba AD DC.
    bash scripts/compose-test.sh "${CARGO_TARGET_DIR:-target}/debug/certgate"
fi
