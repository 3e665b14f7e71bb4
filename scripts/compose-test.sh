#!/usr/bin/env bash
# Compose test: brings up docker/compose.yml (the one-shot PKI service, the Samba AD DC, the
# demo backend and certgate) with podman-compose and proves a request goes through with the
# account checked in AD:
#   - alice's certificate (mapped one-to-one to EXAMPLE\alice, an enabled AD account in the
#     group certgate-users): 200, the backend sees X-Remote-User and X-Remote-Groups from AD;
#   - bob's certificate (mapped to EXAMPLE\bob, who has no AD account): 401.1 from the
#     directory check, so the answer above really came from AD;
#   - no certificate: 403.7.
#
#   bash scripts/compose-test.sh [BINARY]     # default target/debug/certgate
#
# Images: the certgate image is the one scripts/container-test.sh built (tagged as the
# compose file's localhost/certgate:dev; container-test.sh runs first when it is missing); the
# Samba AD image is built from docker/samba-ad with podman (apt-get inside the build, host
# network; about 75 s the first time on the 2-core VM, then cached in the same podman store).
# podman-compose is installed from PyPI, pinned, into target/ (not system-wide). The stack runs
# from a copy of docker/ in $CERTGATE_CONTAINER_DIR/compose-run, so docker/demo in the
# repository is not touched; published ports are on 127.0.0.1, picked free.
#
# What podman-compose 1.0.6 does not do like Docker Compose: `depends_on` conditions
# (service_healthy, service_completed_successfully) only order the start, so the test waits
# for the PKI files and for the DC itself.
set -euo pipefail
cd "$(dirname "$0")/.."
TEST_NAME=compose-test
# shellcheck source=scripts/podman-test-lib.sh
. scripts/podman-test-lib.sh

require_root "podman with runc needs it"
use_binary "${1:-}"
PODMAN_COMPOSE_VERSION=1.0.6
SAMBA_IMAGE=localhost/certgate-samba-ad:dev

T=$(now)
need catatonit:catatonit openssl:openssl jq:jq curl:curl pip3:python3-pip \
    /usr/lib/cni/dnsname:golang-github-containernetworking-plugin-dnsname
PC_DIR=$REPO/target/podman-compose-$PODMAN_COMPOSE_VERSION
if [ ! -f "$PC_DIR/podman_compose.py" ]; then
    log "installing podman-compose $PODMAN_COMPOSE_VERSION from PyPI into $PC_DIR"
    pip3 install -q --disable-pip-version-check --target "$PC_DIR" \
        "podman-compose==$PODMAN_COMPOSE_VERSION" >&2 || die "pip install podman-compose failed"
fi
pcompose() { PYTHONPATH=$PC_DIR python3 -m podman_compose "$@"; }
T_INSTALL=$(elapsed "$T")

# shellcheck source=scripts/podman-reuse.sh
. "$REPO/scripts/podman-reuse.sh"
T=$(now)
ensure_certgate_image
podman tag "$CERTGATE_IMAGE" localhost/certgate:dev
T_IMAGE=$(elapsed "$T")

T=$(now)
# Rebuilt when docker/samba-ad changed since the image was made.
samba_current() {
    podman image exists "$SAMBA_IMAGE" || return 1
    local created newest
    created=$(podman image inspect "$SAMBA_IMAGE" --format '{{.Created.Unix}}')
    newest=$(stat -c %Y "$REPO"/docker/samba-ad/* | sort -n | tail -1)
    [ "$created" -ge "$newest" ]
}
if ! samba_current; then
    log "building $SAMBA_IMAGE from docker/samba-ad"
    podman build --network host --pull=never --format docker --layers -t "$SAMBA_IMAGE" \
        "$REPO/docker/samba-ad" >"$WORK/samba-build.log" 2>&1 \
        || { tail -30 "$WORK/samba-build.log" >&2; die "podman build docker/samba-ad failed (apt inside the build needs Debian's archive)"; }
fi
T_SAMBA=$(elapsed "$T")

exec 9>"$WORK/compose.lock"
flock -w 900 9 || die "another compose test holds $WORK/compose.lock"

RUN=$WORK/compose-run
PROJECT=certgate-compose-test
export CERTGATE_HTTPS_PORT CERTGATE_ADMIN_PORT CERTGATE_LDAPS_PORT
free_port CERTGATE_HTTPS_PORT
free_port CERTGATE_ADMIN_PORT
free_port CERTGATE_LDAPS_PORT
export CERTGATE_PUBLISH=127.0.0.1

cleanup() {
    [ -f "$RUN/compose.yml" ] && (cd "$RUN" && pcompose -p "$PROJECT" -f compose.yml down -v >/dev/null 2>&1) || true
    podman pod rm -f "pod_$PROJECT" >/dev/null 2>&1 || true
    podman volume rm -f "${PROJECT}_samba-ad" >/dev/null 2>&1 || true
    podman volume prune -f >/dev/null 2>&1 || true # anonymous volumes of the images
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -f "$RUN/compose.yml" ]; then cleanup; fi
rm -rf "$RUN" && mkdir -p "$RUN/demo"
cp "$REPO/docker/compose.yml" "$REPO/docker/demo-pki.sh" "$RUN/"
cp -r "$REPO/docker/samba-ad" "$RUN/samba-ad"

T=$(now)
(cd "$RUN" && pcompose -p "$PROJECT" -f compose.yml up -d --no-build) >"$RUN/up.log" 2>&1 \
    || { tail -30 "$RUN/up.log" >&2; die "podman-compose up failed"; }
# The PKI service must have finished before certgate could read its files; with
# podman-compose it only started first, so wait for it and restart certgate if it raced.
for _ in $(seq 100); do
    [ -f "$RUN/demo/certgate.toml" ] && break
    sleep 0.1
done
[ -f "$RUN/demo/certgate.toml" ] || die "the pki service wrote no certgate.toml"
ADMIN=http://127.0.0.1:$CERTGATE_ADMIN_PORT
ready=0
for i in $(seq 300); do
    if curl -fsS -o /dev/null --max-time 1 "$ADMIN/readyz" 2>/dev/null; then
        ready=1
        break
    fi
    [ "$i" = 30 ] && (cd "$RUN" && pcompose -p "$PROJECT" -f compose.yml restart certgate >/dev/null 2>&1 || true)
    sleep 0.2
done
[ "$ready" = 1 ] || { podman logs "${PROJECT}_certgate_1" 2>&1 | tail -20 >&2; die "certgate did not become ready"; }
T_UP=$(elapsed "$T")

failures=()
passes=0
pass() { passes=$((passes + 1)); log "ok   $*"; }
fail() { failures+=("$1"); log "FAIL $*"; }

# request NAME [curl args...]: code into $code, body in $RUN/body
request() {
    local who=$1
    shift
    code=$(curl -sS --max-time 10 --resolve "localhost:$CERTGATE_HTTPS_PORT:127.0.0.1" \
        --cacert "$RUN/demo/ca.crt" "$@" -o "$RUN/body.$who" -w '%{http_code}' \
        "https://localhost:$CERTGATE_HTTPS_PORT/compose-test" 2>"$RUN/curl.err") \
        || code="curl error: $(cat "$RUN/curl.err")"
}

# The DC provisions on its first start (tens of seconds): until it answers, certgate fails
# closed with 503. Wait for alice's answer to change from that.
T=$(now)
for _ in $(seq 120); do
    request alice --cert "$RUN/demo/alice.crt" --key "$RUN/demo/alice.key"
    [ "$code" != 503 ] && [ "${code#curl error}" = "$code" ] && break
    sleep 1
done
T_DC=$(elapsed "$T")
user=$(jq -r '.headers["x-remote-user"] // empty' "$RUN/body.alice" 2>/dev/null || true)
groups=$(jq -r '.headers["x-remote-groups"] // empty' "$RUN/body.alice" 2>/dev/null || true)
if [ "$code" = 200 ] && [ "$user" = 'EXAMPLE\alice' ] && grep -qi 'certgate-users' <<<"$groups"; then
    pass "alice: 200 after ${T_DC}s, X-Remote-User $user, X-Remote-Groups from AD: $groups"
else
    fail "alice" "alice: got $code, user '$user', groups '$groups' (want 200, EXAMPLE\\alice, certgate-users): $(head -c 300 "$RUN/body.alice" 2>/dev/null)"
fi

request bob --cert "$RUN/demo/bob.crt" --key "$RUN/demo/bob.key"
if [ "$code" = 401 ] && grep -q '401\.1' "$RUN/body.bob"; then
    pass "bob (mapped, no AD account): 401.1"
else
    fail "bob" "bob: got $code (want 401 with 401.1): $(head -c 300 "$RUN/body.bob" 2>/dev/null)"
fi

request anonymous
if [ "$code" = 403 ] && grep -q '403\.7' "$RUN/body.anonymous"; then
    pass "no client certificate: 403.7"
else
    fail "no-cert" "no certificate: got $code (want 403.7)"
fi

if [ ${#failures[@]} -gt 0 ]; then
    for s in certgate samba-ad; do
        log "log of $s:"
        podman logs "${PROJECT}_${s}_1" 2>&1 | tail -15 >&2 || true
    done
fi
log "timings: install ${T_INSTALL}s, certgate image ${T_IMAGE}s (reused), samba image ${T_SAMBA}s, up ${T_UP}s, DC ready after ${T_DC}s"
if [ ${#failures[@]} -eq 0 ]; then
    printf 'compose-test: PASS (%d checks, %ss)\n' "$passes" "$(elapsed "$T0")"
    printf 'compose: %d passed, 0 failed\n' "$passes"
else
    printf 'compose-test: FAIL (%d of %d checks failed: %s; %ss)\n' "${#failures[@]}" \
        "$((passes + ${#failures[@]}))" "${failures[*]}" "$(elapsed "$T0")"
    exit 1
fi
