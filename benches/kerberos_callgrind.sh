#!/usr/bin/env bash
# Instructions per keep-alive proxied request, counted by callgrind: certgate without Kerberos,
# with Kerberos to the backend and connection-bound authentication (persist_auth, the default),
# and with a fresh token per request (persist_auth = false). Unlike CPU time on a shared box,
# instruction counts do not move with the neighbours' load, so this is the steady companion of
# `benches/compare.sh -s "certgate certgate-kerberos certgate-kerberos-token"`.
#
#   bash scripts/with-ad.sh bash benches/kerberos_callgrind.sh [REQUESTS]
#
# Each variant: certgate under callgrind (single-threaded scheduler, user space only: the
# kernel's TCP work is not counted), `certgate echo-backend` as the backend, WARMUP keep-alive
# requests from `certgate bench -c 4` (the KDC exchange and each backend connection's first
# token happen here), then REQUESTS/4 and REQUESTS (default 2000) more, each on 4 new client
# connections and counted apart: their difference is per request without the handshakes. The
# Kerberos variants map the client certificate to EXAMPLE\alice (S4U, the test KDC).
# Env: CERTGATE_BIN (default target/release/certgate), WARMUP (500), PORT_BASE (18540),
# KEEP=1 keeps the work directory with the callgrind files (callgrind_annotate FILE).
# Needs valgrind (apt-get install valgrind) and openssl.
set -euo pipefail
REQUESTS=${1:-2000}
WARMUP=${WARMUP:-500}
PORT_BASE=${PORT_BASE:-18540}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CERTGATE_BIN:-$REPO/target/release/certgate}
[[ -x $BIN ]] || { echo "no $BIN: cargo build --release, or set CERTGATE_BIN" >&2; exit 1; }
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o DPkg::Lock::Timeout=900 --no-install-recommends valgrind >&2
[[ -n ${KRB_BACKEND_SPN:-} ]] || { echo "run under scripts/with-ad.sh (the test KDC)" >&2; exit 1; }
PORT=$PORT_BASE BACKEND_PORT=$((PORT_BASE + 1))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/certgate-callgrind.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK (callgrind_annotate its *.callgrind.*)" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1: ${2:+$(tail -20 "$2")}" >&2
    exit 1
}

(
    cd "$WORK"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 2 -subj '/CN=callgrind CA' \
        -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign' 2>/dev/null
    openssl req "${ec[@]}" -keyout server.key -out server.csr -subj '/CN=localhost' 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out server.crt \
        -extfile <(printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n') 2>/dev/null
    openssl req "${ec[@]}" -keyout client.key -out client.csr -subj '/CN=client' 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out client.crt \
        -extfile <(printf 'extendedKeyUsage=clientAuth\n') 2>/dev/null
)
"$BIN" echo-backend --listen "127.0.0.1:$BACKEND_PORT" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
wait_port "$BACKEND_PORT"

# measure NAME KERBEROS_TOML: prints "NAME instructions/request".
measure() {
    local name=$1 kerberos=$2 user='BENCH\\client' service= pid out
    if [[ -n $kerberos ]]; then
        user='EXAMPLE\\alice'
        service='[kerberos]
realm = "EXAMPLE.TEST"
principal = "svc-certgate"
password_env = "AD_BIND_PASSWORD"'
    fi
    cat >"$WORK/$name.toml" <<EOF
[server]
listen = ["127.0.0.1:$PORT"]
[headers]
issuer = ""
serial = ""
thumbprint = ""
client_cert = ""
$service
[[site]]
name = "bench"
host_names = ["localhost"]
certificate = "$WORK/server.crt"
private_key = "$WORK/server.key"
client_ca = ["$WORK/ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
anonymous_authentication = false
backend = "http://127.0.0.1:$BACKEND_PORT"
[site.iis_client_certificate_mapping_authentication]
enabled = true
[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "$user"
certificate_file = "$WORK/client.crt"
$kerberos
EOF
    out=$WORK/$name.callgrind
    RUST_LOG=warn valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out.%p" \
        "$BIN" run --worker-threads 1 -c "$WORK/$name.toml" >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_port "$PORT" "$WORK/$name.log"
    load() {
        "$BIN" bench "https://localhost:$PORT/" --cert "$WORK/client.crt" --key "$WORK/client.key" \
            --ca "$WORK/ca.crt" --mode keepalive -c 4 -n "$1" -d 300 --quiet >/dev/null
    }
    load "$WARMUP"
    # Two measured loads, each with its own 4 new client connections (handshakes): the
    # difference of their counts is REQUESTS - REQUESTS/4 requests and no handshake.
    callgrind_control -z >/dev/null 2>&1
    load $((REQUESTS / 4))
    callgrind_control -d >/dev/null 2>&1
    callgrind_control -z >/dev/null 2>&1
    load "$REQUESTS"
    callgrind_control -d >/dev/null 2>&1
    sleep 1
    python3 - "$name" "$REQUESTS" "$WORK" <<'PY'
import glob, sys
name, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def total(part):
    for f in glob.glob(f"{work}/{name}.callgrind.*.{part}"):
        for line in open(f, errors="replace"):
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    sys.exit(f"no callgrind dump {part} for {name}")
short, full = total(1), total(2)
per = (full - short) / (n - n // 4)
print(f"{name:<24} {per:>10,.0f} instructions per request "
      f"(with 4 handshakes: {full / n:,.0f} at {n}, {short / (n // 4):,.0f} at {n // 4})")
PY
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

echo "callgrind, user-space instructions per keep-alive proxied request ($REQUESTS after $WARMUP):"
measure certgate ""
measure certgate-kerberos "[site.backend_kerberos]
spn = \"$KRB_BACKEND_SPN\""
measure certgate-kerberos-token "[site.backend_kerberos]
spn = \"$KRB_BACKEND_SPN\"
persist_auth = false"
