#!/usr/bin/env bash
# Kubernetes manifest test: plays deploy/kubernetes/certgate.yaml with `podman kube play` and
# proves the replicas it starts serve mTLS and share session tickets:
#   - every replica of the Deployment becomes ready (its readiness exec probe command passes);
#   - a request with a mapped client certificate to replica 1 gets 200 and the backend sees
#     X-Remote-User, for TLS 1.3 and TLS 1.2;
#   - the session from replica 1 resumes on replica 2 (`openssl s_client -sess_out/-sess_in`,
#     a client nobody here wrote), with the same identity;
#   - appending a ticket key to the shared file is picked up by every replica's watcher, and a
#     session from replica 2 sealed with the new key resumes on replica 1;
#   - the liveness probe passes (`podman healthcheck run`).
#
#   bash scripts/kube-test.sh [BINARY]     # default target/debug/certgate
#
# It reuses the image and podman state of scripts/container-test.sh (same directory,
# $CERTGATE_CONTAINER_DIR): if the image for BINARY is not there yet, container-test.sh runs
# first. Nothing is built here.
#
# What podman 4.3 (Debian 12) does with the manifest, and so what is and is not exercised:
#   - Deployment: all `replicas` start, each as a pod with its own IP on podman's bridge
#     (10.88.0.0/16, reachable from this host only); the test talks to the pod IPs.
#   - ConfigMap volume: used as written (the config certgate runs is the manifest's, with the
#     image, backend URL and names of this test substituted). Podman copies it once: a
#     ConfigMap update reaching a running pod (and `watch = true` reloading it) is not
#     exercised here; the watcher itself is (the ticket keys below, and tests/operations.rs).
#   - Secret volumes: podman 4.3 writes `stringData` as nothing, `data` undecoded, and every
#     file 0644 root:root whatever `defaultMode` says, so the test replaces the two Secret
#     volumes with hostPath directories holding the same files in the shape Kubernetes gives
#     them (root:10001, 0440, i.e. defaultMode 0440 with fsGroup 10001).
#   - Probes: the exec liveness probe becomes a podman health check (run once here); readiness
#     probes are ignored by podman, so the test runs the same command itself.
#   - Namespace, Service and PodDisruptionBudget are ignored by podman: not exercised. The
#     Service's load balancing is stood in for by connecting to each pod.
#   - containerPorts: podman 4.3 publishes each on the host's 0.0.0.0, so the second replica
#     could not start; the test drops `ports` (only the Service's targetPort names them) and
#     reaches every pod by its IP.
#   - securityContext (uid 10001, no capabilities, read-only root) is applied.
set -euo pipefail
cd "$(dirname "$0")/.."
TEST_NAME=kube-test
# shellcheck source=scripts/podman-test-lib.sh
. scripts/podman-test-lib.sh

require_root "podman with runc needs it"
use_binary "${1:-}"
MANIFEST=$REPO/deploy/kubernetes/certgate.yaml

need catatonit:catatonit openssl:openssl jq:jq python3:python3
python3 -c 'import yaml' 2>/dev/null || install_packages python3-yaml

# shellcheck source=scripts/podman-reuse.sh
. "$REPO/scripts/podman-reuse.sh"
T=$(now)
ensure_certgate_image
T_IMAGE=$(elapsed "$T")

exec 9>"$WORK/kube.lock"
flock -w 900 9 || die "another kube test holds $WORK/kube.lock"

# --- files the pods get ------------------------------------------------------------------
T=$(now)
RUN=$WORK/kube-run
NS=certgate-kt
rm -rf "$RUN" && mkdir -p "$RUN/pki" "$RUN/tls" "$RUN/tickets"
newkey() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "$@" 2>/dev/null; }
issue() { # NAME SUBJECT EXTENSIONS
    newkey -keyout "$RUN/pki/$1.key" -out "$RUN/pki/$1.csr" -subj "$2"
    printf '%b' "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n$3\n" >"$RUN/pki/$1.ext"
    openssl x509 -req -in "$RUN/pki/$1.csr" -CA "$RUN/pki/ca.crt" -CAkey "$RUN/pki/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 2 -out "$RUN/pki/$1.crt" \
        -extfile "$RUN/pki/$1.ext" 2>/dev/null
}
newkey -x509 -days 2 -keyout "$RUN/pki/ca.key" -out "$RUN/pki/ca.crt" -subj '/CN=certgate kube test CA' \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
    || die "openssl: cannot make the CA"
issue server '/CN=app.example.test' 'subjectAltName=DNS:app.example.test\nextendedKeyUsage=serverAuth' \
    || die "openssl: cannot issue the server certificate"
issue alice '/CN=alice' 'extendedKeyUsage=clientAuth' || die "openssl: cannot issue alice"
cp "$RUN/pki/server.crt" "$RUN/tls/server.crt"
cp "$RUN/pki/server.key" "$RUN/tls/server.key"
cp "$RUN/pki/ca.crt" "$RUN/tls/client-ca.crt"
cp "$RUN/pki/alice.crt" "$RUN/tls/alice.crt"
# `openssl rand -base64 80` wraps at 64 columns: certgate reads that as one key.
openssl rand -base64 80 >"$RUN/tickets/ticket.keys"
# What a Secret volume with defaultMode 0440 and fsGroup 10001 looks like.
chown -R 0:10001 "$RUN/tls" "$RUN/tickets"
chmod 0750 "$RUN/tls" "$RUN/tickets"
chmod 0440 "$RUN/tls"/* "$RUN/tickets"/*

cleanup() {
    [ -f "$RUN/app.yaml" ] && podman kube down "$RUN/app.yaml" >/dev/null 2>&1 || true
    [ -f "$RUN/backend.yaml" ] && podman kube down "$RUN/backend.yaml" >/dev/null 2>&1 || true
    podman volume rm -f certgate-config >/dev/null 2>&1 || true
    podman volume prune -f >/dev/null 2>&1 || true # anonymous volumes of the images
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup

# --- the backend: the demo echo backend as a pod of its own --------------------------------
cat >"$RUN/backend.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $NS-backend
spec:
  containers:
    - name: echo
      image: $CERTGATE_IMAGE
      args: ["echo-backend", "--listen", "0.0.0.0:8080"]
EOF
podman kube play --network podman "$RUN/backend.yaml" >"$RUN/play-backend.out" 2>&1 \
    || { cat "$RUN/play-backend.out" >&2; die "podman kube play (backend) failed"; }
BACKEND_IP=$(podman inspect "$NS-backend-echo" --format '{{.NetworkSettings.IPAddress}}')
[ -n "$BACKEND_IP" ] || die "the backend pod has no IP"

# --- the manifest, with this test's substitutions ------------------------------------------
python3 - "$MANIFEST" "$RUN/app.yaml" "$CERTGATE_IMAGE" "http://$BACKEND_IP:8080" "$RUN" <<'PY' \
    || die "cannot rewrite the manifest"
import sys, yaml
src, dst, image, backend, run = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(src)) if d]
out = []
for d in docs:
    kind = d["kind"]
    if kind == "ConfigMap":
        text = d["data"]["certgate.toml"]
        old = "http://app.app.svc.cluster.local:8080"
        assert old in text, "the ConfigMap's backend URL moved"
        d["data"]["certgate.toml"] = text.replace(old, backend)
    elif kind == "Deployment":
        spec = d["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        c["image"] = image
        # podman 4.3 publishes every containerPort on the host (0.0.0.0), which collides
        # between replicas; the test reaches each pod by its IP instead.
        c.pop("ports", None)
        for v in spec["volumes"]:
            if "secret" in v:
                name = {"certgate-tls": "tls", "certgate-ticket-keys": "tickets"}[v["secret"]["secretName"]]
                del v["secret"]
                v["hostPath"] = {"path": f"{run}/{name}", "type": "Directory"}
    elif kind == "Secret":
        continue  # replaced by hostPath volumes (podman 4.3 mangles Secret volumes)
    out.append(d)
kinds = [d["kind"] for d in out]
assert "Deployment" in kinds and "ConfigMap" in kinds, kinds
yaml.safe_dump_all(out, open(dst, "w"), sort_keys=False)
PY
REPLICAS=$(python3 -c 'import sys,yaml; print([d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"]=="Deployment"][0]["spec"]["replicas"])' "$RUN/app.yaml")
[ "$REPLICAS" -ge 2 ] || die "the Deployment has $REPLICAS replica(s); the test needs at least 2"

podman kube play --network podman "$RUN/app.yaml" >"$RUN/play.out" 2>&1 \
    || { cat "$RUN/play.out" >&2; die "podman kube play $MANIFEST failed"; }
mapfile -t CTRS < <(podman ps --format '{{.Names}}' | grep -E '^certgate-pod-[0-9]+-certgate$' | sort)
[ "${#CTRS[@]}" = "$REPLICAS" ] || die "expected $REPLICAS certgate containers, podman runs: ${CTRS[*]:-none}"
IPS=()
for c in "${CTRS[@]}"; do
    IPS+=("$(podman inspect "$c" --format '{{.NetworkSettings.IPAddress}}')")
done
T_PLAY=$(elapsed "$T")

# --- checks ------------------------------------------------------------------------------
T=$(now)
failures=()
passes=0
pass() { passes=$((passes + 1)); log "ok   $*"; }
fail() { failures+=("$1"); log "FAIL $*"; }

# Readiness: the manifest's readinessProbe command, in each replica.
for c in "${CTRS[@]}"; do
    ready=0
    for _ in $(seq 100); do
        if podman exec "$c" certgate healthcheck --url http://127.0.0.1:9090/readyz >/dev/null 2>&1; then
            ready=1
            break
        fi
        sleep 0.1
    done
    [ "$ready" = 1 ] || { podman logs "$c" 2>&1 | tail -20 >&2; die "$c never became ready"; }
done
pass "$REPLICAS replicas ready (${IPS[*]})"

user_of() { { grep -o "\"x-remote-user\": *\"[^\"]*\"" "$1" || true; } | head -1 | sed "s/.*: *\"//; s/\"$//"; }
# A session from replica 1 resumed on replica 2: -sess_out, then -sess_in.
resume_check() { # PROTO LABEL FROM-IP TO-IP
    local proto=$1 label=$2 from=$3 to=$4 sess=$RUN/session.pem
    rm -f "$sess"
    printf 'GET /kube-test HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n' |
        timeout 10 openssl s_client -ign_eof "$proto" -sess_out "$sess" \
            -connect "$from:8443" -servername app.example.test -verify_return_error \
            -CAfile "$RUN/pki/ca.crt" -cert "$RUN/pki/alice.crt" -key "$RUN/pki/alice.key" \
            >"$RUN/first.out" 2>&1 || true
    local first_user second_user
    first_user=$(user_of "$RUN/first.out")
    if ! grep -q 'HTTP/1.1 200 OK' "$RUN/first.out" || [ "$first_user" != 'EXAMPLE\\alice' ] \
        || ! grep -q '^New, ' "$RUN/first.out" || [ ! -s "$sess" ]; then
        fail "$label-first" "$label: first request to $from: want 200, a new session and X-Remote-User EXAMPLE\\\\alice; got user '$first_user': $(grep -E '^(HTTP|New|Reused)' "$RUN/first.out" | tr '\n' ' ')"
        return
    fi
    pass "$label: replica $from: 200, new session, backend saw X-Remote-User $first_user"
    printf 'GET /kube-test HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n' |
        timeout 10 openssl s_client -ign_eof "$proto" -sess_in "$sess" \
            -connect "$to:8443" -servername app.example.test -verify_return_error \
            -CAfile "$RUN/pki/ca.crt" -cert "$RUN/pki/alice.crt" -key "$RUN/pki/alice.key" \
            >"$RUN/second.out" 2>&1 || true
    second_user=$(user_of "$RUN/second.out")
    if grep -q '^Reused, ' "$RUN/second.out" && grep -q 'HTTP/1.1 200 OK' "$RUN/second.out" \
        && [ "$second_user" = "$first_user" ]; then
        pass "$label: the session resumed on replica $to, same user $second_user"
    else
        fail "$label-resume" "$label: session from $from on $to: want Reused + 200 + $first_user; got user '$second_user': $(grep -E '^(HTTP|New|Reused)' "$RUN/second.out" | tr '\n' ' ')"
    fi
}
resume_check -tls1_3 "TLS 1.3" "${IPS[0]}" "${IPS[1]}"
resume_check -tls1_2 "TLS 1.2" "${IPS[0]}" "${IPS[1]}"

# Rotation: append a key to the shared file; every replica's watcher reloads, then a session
# from replica 2 (sealed with the new key) resumes on replica 1.
sleep 1 # the watcher compares mtimes in whole seconds on some file systems
{ openssl rand 80 | base64 -w0; echo; } >>"$RUN/tickets/ticket.keys"
reloaded=0
for _ in $(seq 100); do
    n=0
    for c in "${CTRS[@]}"; do
        podman logs "$c" 2>&1 | grep -q 'configuration reloaded' && n=$((n + 1))
    done
    [ "$n" = "${#CTRS[@]}" ] && { reloaded=1; break; }
    sleep 0.1
done
if [ "$reloaded" = 1 ]; then
    pass "appended ticket key: every replica's watcher reloaded"
    resume_check -tls1_3 "after rotation" "${IPS[1]}" "${IPS[0]}"
else
    fail "rotation" "appended ticket key: not every replica reloaded"
fi

# Liveness: the exec probe as podman's health check.
if out=$(podman healthcheck run "${CTRS[0]}" 2>&1); then
    pass "liveness probe (podman healthcheck run): healthy"
else
    fail "liveness" "liveness probe: $out"
fi

# The ticket keys never reach a log.
key_prefix=$(head -c 24 "$RUN/tickets/ticket.keys")
if podman logs "${CTRS[0]}" 2>&1 | grep -qF "$key_prefix"; then
    fail "secret-in-log" "a ticket key appears in the container log"
fi
T_CHECKS=$(elapsed "$T")

if [ ${#failures[@]} -gt 0 ]; then
    for c in "${CTRS[@]}"; do
        log "log of $c:"
        podman logs "$c" 2>&1 | tail -15 >&2 || true
    done
fi
log "timings: image ${T_IMAGE}s (reused), pki+play ${T_PLAY}s, checks ${T_CHECKS}s"
if [ ${#failures[@]} -eq 0 ]; then
    printf 'kube-test: PASS (%d checks, %ss)\n' "$passes" "$(elapsed "$T0")"
    printf 'kube: %d passed, 0 failed\n' "$passes"
else
    printf 'kube-test: FAIL (%d of %d checks failed: %s; %ss)\n' "${#failures[@]}" \
        "$((passes + ${#failures[@]}))" "${failures[*]}" "$(elapsed "$T0")"
    exit 1
fi
