#!/usr/bin/env bash
# Container test: builds the image from docker/Dockerfile (target `prebuilt`, with a binary the
# caller built) and proves the running container does its job:
#   - a request with a client certificate gets 200 and the backend sees X-Remote-User;
#   - a request without one gets 403.7;
#   - `certgate healthcheck` (and the image's HEALTHCHECK) pass inside the container;
#   - SIGHUP reloads and SIGTERM (`podman stop`) stops certgate as PID 1 with exit status 0;
#   - the process runs as uid/gid 10001, with a read-only root file system and no capabilities.
#
#   bash scripts/container-test.sh [BINARY]      # default target/debug/certgate
#
# Run as root on Debian 12. There is no Docker daemon: podman + runc + host network + explicit
# ulimits, the recipe that works on this kind of host (crun does not; podman's default ulimits
# are above the hard limits). Storage is overlay where the kernel mounts it, else vfs. Missing
# packages (podman buildah runc debootstrap ...) are installed with apt. No registry is needed:
# the base image the Dockerfile names (docker.io/library/debian:bookworm-slim) is made locally
# with debootstrap --variant=minbase and `podman import`; the image build itself runs
# `apt-get install ca-certificates` against Debian's archive (host network).
#
# All podman state (configuration, image storage, the base rootfs tarball) lives in
# $CERTGATE_CONTAINER_DIR (default target/container-test) and is reused, so only the first run
# pays for debootstrap and the base layers. Podman also creates /var/lib/containers/cache,
# /run/libpod and /run/containers/networks. One run per directory at a time (a lock waits).
#
# Environment:
#   CERTGATE_CONTAINER_DIR      state directory (default target/container-test)
#   CERTGATE_CONTAINER_STORAGE  auto (default: overlay if it mounts here, else vfs), overlay, vfs
#   CERTGATE_DEBIAN_MIRROR      Debian mirror for debootstrap (default http://deb.debian.org/debian)
#   CERTGATE_KEEP_IMAGE=1       keep the previous untagged test images (default: pruned)
set -euo pipefail
cd "$(dirname "$0")/.."
TEST_NAME=container-test
# shellcheck source=scripts/podman-test-lib.sh
. scripts/podman-test-lib.sh

require_root "podman with runc, debootstrap and apt need it"

# --- the binary and the build context -------------------------------------------------------
use_binary "${1:-}"
"$BIN" --version >/dev/null 2>&1 || die "$BIN does not run (--version failed)"

MIRROR=${CERTGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=docker.io/library/debian:bookworm-slim # what docker/Dockerfile's RUNTIME_IMAGE names
IMAGE=localhost/certgate:container-test
LABEL=certgate-container-test

mkdir -p "$WORK"
exec 9>"$WORK/lock"
flock -w 900 9 || die "another container test holds $WORK/lock"

# The documented build uses the repository as the context, and .dockerignore admits only
# target/{debug,release}/certgate from target/. A binary elsewhere (CARGO_TARGET_DIR) goes into
# a one-file context instead; the Dockerfile's stages before `prebuilt` use no context files.
case "${BIN#"$REPO"/}" in
target/debug/certgate | target/release/certgate)
    CONTEXT=$REPO
    BIN_IN_CONTEXT=${BIN#"$REPO"/}
    ;;
*)
    CONTEXT=$WORK/context
    rm -rf "$CONTEXT" && mkdir -p "$CONTEXT"
    ln "$BIN" "$CONTEXT/certgate" 2>/dev/null || cp "$BIN" "$CONTEXT/certgate"
    BIN_IN_CONTEXT=certgate
    ;;
esac

# --- packages -------------------------------------------------------------------------------
T=$(now)
need podman:podman buildah:buildah runc:runc debootstrap:debootstrap curl:curl \
    openssl:openssl jq:jq ss:iproute2 flock:util-linux
T_INSTALL=$(elapsed "$T")

# --- podman configuration: runc, cgroupfs, host network, explicit ulimits -------------------
# Storage: overlay when the kernel mounts it on this file system (a build with cached layers
# takes ~2 s), else vfs, which works everywhere but copies every layer and every container's
# root file system in full (~20-40 s per build on 2 cores). Each driver has its own store.
STORAGE=${CERTGATE_CONTAINER_STORAGE:-auto}
if [ "$STORAGE" = auto ]; then
    probe=$WORK/overlay-probe
    rm -rf "$probe" && mkdir -p "$probe"/{lower,upper,work,merged}
    if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
        "$probe/merged" 2>/dev/null; then
        umount "$probe/merged"
        STORAGE=overlay
    else
        STORAGE=vfs
    fi
    rm -rf "$probe"
fi
case "$STORAGE" in overlay | vfs) ;; *) die "CERTGATE_CONTAINER_STORAGE must be auto, overlay or vfs" ;; esac
PODMAN_DIR=$WORK/podman-$STORAGE
mkdir -p "$PODMAN_DIR/conf" "$PODMAN_DIR/tmp"
cat >"$PODMAN_DIR/conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$PODMAN_DIR/tmp"
EOF
cat >"$PODMAN_DIR/conf/storage.conf" <<EOF
[storage]
driver = "$STORAGE"
graphroot = "$PODMAN_DIR/root"
runroot = "$PODMAN_DIR/runroot"
EOF
export CONTAINERS_CONF=$PODMAN_DIR/conf/containers.conf
export CONTAINERS_STORAGE_CONF=$PODMAN_DIR/conf/storage.conf

# Containers left by an interrupted run (the lock makes them ours).
podman ps -aq --filter "label=$LABEL" | xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true

# --- the base image, without a registry -----------------------------------------------------
T=$(now)
if ! podman image exists "$BASE_IMAGE"; then
    tarball=$WORK/base/bookworm-minbase.tar
    if [ ! -s "$tarball" ]; then
        log "debootstrap --variant=minbase bookworm (once; about 30 s)"
        rootfs=$WORK/base/rootfs
        rm -rf "$rootfs" && mkdir -p "$rootfs"
        debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$WORK/base/debootstrap.log" 2>&1 \
            || { tail -20 "$WORK/base/debootstrap.log" >&2; die "debootstrap failed (log: $WORK/base/debootstrap.log)"; }
        # Like the official slim image: no package cache, no lists.
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
            "$rootfs"/var/log/bootstrap.log
        tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    log "importing the base rootfs as $BASE_IMAGE"
    podman import -q \
        --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD=["bash"]' \
        "$tarball" "$BASE_IMAGE" >/dev/null || die "podman import failed"
fi
T_BASE=$(elapsed "$T")

# --- the image ------------------------------------------------------------------------------
T=$(now)
log "building $IMAGE from docker/Dockerfile (target prebuilt, $BIN_IN_CONTEXT)"
# --format docker keeps HEALTHCHECK (OCI images have no such field).
if ! podman build --network host --pull=never --format docker --layers \
    -f "$REPO/docker/Dockerfile" --target prebuilt \
    --build-arg "CERTGATE_BINARY=$BIN_IN_CONTEXT" \
    -t "$IMAGE" "$CONTEXT" >"$PODMAN_DIR/build.log" 2>&1; then
    tail -30 "$PODMAN_DIR/build.log" >&2
    die "podman build failed (log: $PODMAN_DIR/build.log)"
fi
# Each new binary leaves the previous test image untagged; vfs stores every layer in full.
[ "${CERTGATE_KEEP_IMAGE:-0}" = 1 ] || podman image prune -f >/dev/null 2>&1 || true
T_BUILD=$(elapsed "$T")

# --- PKI, configuration, backend ------------------------------------------------------------
T=$(now)
RUN=$WORK/run
rm -rf "$RUN" && mkdir -p "$RUN/pki" "$RUN/etc"
chmod 0755 "$RUN/etc"

free_port PORT
free_port ADMIN_PORT
free_port BACKEND_PORT

newkey() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "$@" 2>/dev/null; }
issue() { # NAME SUBJECT EXTENSIONS
    newkey -keyout "$RUN/pki/$1.key" -out "$RUN/pki/$1.csr" -subj "$2"
    printf '%b' "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n$3\n" >"$RUN/pki/$1.ext"
    openssl x509 -req -in "$RUN/pki/$1.csr" -CA "$RUN/pki/ca.crt" -CAkey "$RUN/pki/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 2 -out "$RUN/pki/$1.crt" \
        -extfile "$RUN/pki/$1.ext" 2>/dev/null
}
newkey -x509 -days 2 -keyout "$RUN/pki/ca.key" -out "$RUN/pki/ca.crt" \
    -subj '/DC=test/DC=example/CN=certgate container test CA' \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
    || die "openssl: cannot make the CA"
issue server '/CN=localhost' 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth' \
    || die "openssl: cannot issue the server certificate"
issue alice '/DC=test/DC=example/CN=alice' \
    'subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:alice@example.test\nextendedKeyUsage=clientAuth' \
    || die "openssl: cannot issue the client certificate"

# What the container gets: certificates, the server key (readable by uid 10001 only) and the
# configuration. No CA key, no client key.
cp "$RUN/pki/ca.crt" "$RUN/pki/server.crt" "$RUN/pki/alice.crt" "$RUN/etc/"
install -m 0600 -o 10001 -g 10001 "$RUN/pki/server.key" "$RUN/etc/server.key"
cat >"$RUN/etc/certgate.toml" <<EOF
# Written by scripts/container-test.sh.
[server]
listen = ["127.0.0.1:$PORT"]
admin_listen = "127.0.0.1:$ADMIN_PORT"

[[site]]
name = "container-test"
host_names = ["localhost"]
certificate = "/etc/certgate/server.crt"
private_key = "/etc/certgate/server.key"
client_ca = ["/etc/certgate/ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
anonymous_authentication = false
backend = "http://127.0.0.1:$BACKEND_PORT"

[site.iis_client_certificate_mapping_authentication]
enabled = true

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\\\alice"
certificate_file = "/etc/certgate/alice.crt"
EOF
chmod 0644 "$RUN/etc/certgate.toml" "$RUN/etc/"*.crt

CTR=certgate-ct-$$
BACKEND_PID=""
cleanup() {
    podman rm -f -t 0 "$CTR" >/dev/null 2>&1 || true
    if [ -n "$BACKEND_PID" ]; then
        kill "$BACKEND_PID" 2>/dev/null || true
        wait "$BACKEND_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The backend runs on the host from the same binary; the container reaches it over the host
# network.
"$BIN" echo-backend --listen "127.0.0.1:$BACKEND_PORT" >"$RUN/backend.log" 2>&1 &
BACKEND_PID=$!

# --- run the container ----------------------------------------------------------------------
# The image's own user (no --user), config and certificates as a read-only volume, hardened
# like docker/compose.yml and the Kubernetes manifest.
podman run -d --name "$CTR" --label "$LABEL" --pull=never --network host \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    --health-interval disable \
    -v "$RUN/etc:/etc/certgate:ro" \
    -e "CERTGATE_HEALTHCHECK_URL=http://127.0.0.1:$ADMIN_PORT/healthz" \
    "$IMAGE" >"$RUN/run.out" 2>&1 || { cat "$RUN/run.out" >&2; die "podman run failed"; }

ready=0
for _ in $(seq 200); do
    if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$ADMIN_PORT/readyz" 2>/dev/null; then
        ready=1
        break
    fi
    [ "$(podman inspect --format '{{.State.Running}}' "$CTR" 2>/dev/null)" = true ] || break
    sleep 0.1
done
if [ "$ready" != 1 ]; then
    podman logs "$CTR" >&2 || true
    die "the container did not become ready on 127.0.0.1:$ADMIN_PORT/readyz"
fi
T_START=$(elapsed "$T")

# --- checks ---------------------------------------------------------------------------------
T=$(now)
failures=()
passes=0
pass() { passes=$((passes + 1)); log "ok   $*"; }
fail() { failures+=("$1"); log "FAIL $*"; }

CURL=(curl -sS --max-time 10 --resolve "localhost:$PORT:127.0.0.1" --cacert "$RUN/pki/ca.crt"
    -o "$RUN/body" -w '%{http_code}')

# (a) With the mapped client certificate: 200, and the backend saw the mapped user.
code=$("${CURL[@]}" --cert "$RUN/pki/alice.crt" --key "$RUN/pki/alice.key" \
    "https://localhost:$PORT/container-test" 2>"$RUN/curl.err") || code="curl error: $(cat "$RUN/curl.err")"
user=$(jq -r '.headers["x-remote-user"] // empty' "$RUN/body" 2>/dev/null || true)
if [ "$code" = 200 ] && [ "$user" = 'EXAMPLE\alice' ]; then
    pass "client certificate: 200, backend saw X-Remote-User: $user"
else
    fail "client-cert" "client certificate: got $code, X-Remote-User '${user}' (want 200, EXAMPLE\\alice): $(head -c 300 "$RUN/body" 2>/dev/null)"
fi

# (b) Without a certificate: 403.7.
code=$("${CURL[@]}" "https://localhost:$PORT/container-test" 2>"$RUN/curl.err") \
    || code="curl error: $(cat "$RUN/curl.err")"
if [ "$code" = 403 ] && grep -q '403\.7' "$RUN/body"; then
    pass "no client certificate: 403.7"
else
    fail "no-cert" "no client certificate: got $code (want 403 with 403.7 in the body): $(head -c 300 "$RUN/body" 2>/dev/null)"
fi

# (c) Health checks inside the container: the subcommand, the image's HEALTHCHECK (which must
# follow CERTGATE_HEALTHCHECK_URL), and a probe of a dead port that must fail.
if out=$(podman exec "$CTR" certgate healthcheck --url "http://127.0.0.1:$ADMIN_PORT/healthz" 2>&1); then
    pass "podman exec certgate healthcheck: exit 0"
else
    fail "healthcheck" "podman exec certgate healthcheck: $out"
fi
if out=$(podman healthcheck run "$CTR" 2>&1); then
    pass "image HEALTHCHECK (podman healthcheck run): healthy"
else
    fail "image-healthcheck" "image HEALTHCHECK (podman healthcheck run): $out"
fi
if podman exec "$CTR" certgate healthcheck --url "http://127.0.0.1:1/healthz" >/dev/null 2>&1; then
    fail "healthcheck-negative" "certgate healthcheck against a closed port exited 0"
else
    pass "certgate healthcheck against a closed port: exit 1"
fi

# (e) Non-root: the process itself (seen from the host) and the image's user.
pid=$(podman inspect --format '{{.State.Pid}}' "$CTR")
ids=$(awk '/^Uid:|^Gid:/ { print $1, $2, $3, $4, $5 }' "/proc/$pid/status" 2>/dev/null | tr '\n' ' ')
comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
if [ "$ids" = "Uid: 10001 10001 10001 10001 Gid: 10001 10001 10001 10001 " ] && [ "$comm" = certgate ]; then
    pass "PID 1 is certgate running as uid/gid 10001 (host pid $pid)"
else
    fail "non-root" "container process $pid ($comm): $ids (want certgate with uid/gid 10001)"
fi
caps=$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
if [ "$caps" = 0000000000000000 ]; then
    pass "no effective capabilities, read-only root file system"
else
    fail "caps" "effective capabilities $caps (want none)"
fi

# SIGHUP reaches PID 1 and reloads.
podman kill --signal HUP "$CTR" >/dev/null
reloaded=0
for _ in $(seq 50); do
    podman logs "$CTR" >"$RUN/container.log" 2>&1 || true
    grep -q 'configuration reloaded' "$RUN/container.log" && { reloaded=1; break; }
    sleep 0.1
done
if [ "$reloaded" = 1 ] && [ "$(podman inspect --format '{{.State.Running}}' "$CTR")" = true ]; then
    pass "SIGHUP: configuration reloaded, still running"
else
    fail "sighup" "SIGHUP: no 'configuration reloaded' in the log"
fi

# Logs are plain text (the image sets NO_COLOR), not terminal colour codes.
podman logs "$CTR" >"$RUN/container.log" 2>&1 || true
if [ -s "$RUN/container.log" ] && ! grep -q $'\e\[' "$RUN/container.log"; then
    pass "container log is plain text"
else
    fail "log" "container log is empty or has terminal colour codes"
fi

# (d) SIGTERM: podman stop sends the image's STOPSIGNAL and would SIGKILL after 10 s (exit 137).
ts=$(now)
podman stop -t 10 "$CTR" >/dev/null 2>&1 || true
took=$(elapsed "$ts")
status=$(podman inspect --format '{{.State.ExitCode}}' "$CTR" 2>/dev/null || echo '?')
if [ "$status" = 0 ] && awk -v t="$took" 'BEGIN { exit !(t < 9) }'; then
    pass "podman stop: SIGTERM reached PID 1, exit status 0 in ${took}s"
else
    fail "sigterm" "podman stop: exit status $status after ${took}s (want 0, well under the 10 s SIGKILL)"
fi
T_CHECKS=$(elapsed "$T")

if [ ${#failures[@]} -gt 0 ]; then
    log "container log:"
    podman logs "$CTR" 2>&1 | tail -30 >&2 || true
fi

log "timings ($STORAGE storage): packages ${T_INSTALL}s, base image ${T_BASE}s, build ${T_BUILD}s, pki+start ${T_START}s, checks ${T_CHECKS}s"
if [ ${#failures[@]} -eq 0 ]; then
    printf 'container-test: PASS (%d checks, %ss)\n' "$passes" "$(elapsed "$T0")"
    # The plain closing line CI reads as a test count.
    printf 'container: %d passed, 0 failed\n' "$passes"
else
    printf 'container-test: FAIL (%d of %d checks failed: %s; %ss)\n' "${#failures[@]}" \
        "$((passes + ${#failures[@]}))" "${failures[*]}" "$(elapsed "$T0")"
    exit 1
fi
