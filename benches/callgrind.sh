#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind, for certgate and its variants. Unlike
# CPU time on a shared box, instruction counts do not move with the neighbours' load, so this is
# the steady companion of `benches/compare.sh -s "certgate VARIANT..."`.
#
#   bash benches/callgrind.sh [-m keepalive|handshake] [-n REQUESTS] [-g certgate|curl] [VARIANT...]
#   bash scripts/with-ad.sh bash benches/callgrind.sh certgate certgate-kerberos certgate-kerberos-token
#   bash benches/callgrind.sh -m handshake certgate certgate-revocation
#
# Variants (default: certgate certgate-kerberos certgate-kerberos-token):
#   certgate                  no Kerberos, no revocation source in the client certificate;
#   certgate-kerberos         Kerberos to the backend with connection-bound authentication
#                             (persist_auth, the default); the client maps to EXAMPLE\alice (S4U,
#                             the test KDC: run under scripts/with-ad.sh);
#   certgate-kerberos-token   the same with persist_auth = false (a fresh token per request);
#   certgate-revocation       `check = "chain"`, the client certificate names a CRL Distribution
#                             Point served by a local python3 http.server with a 1,000-entry CRL
#                             (fetched during the warm-up, so the measured part has a warm cache).
#
# Each variant: certgate under callgrind (single-threaded scheduler, user space only: the
# kernel's TCP work is not counted), `certgate echo-backend` as the backend, WARMUP requests
# from `certgate bench -c 4`, then REQUESTS/4 and REQUESTS (default 2000) more, counted apart:
#   - keepalive: each load on 4 new client connections; the difference of the two counts is per
#     keep-alive request without the handshakes;
#   - handshake: every request on a new connection (a full mTLS handshake + one proxied GET);
#     the difference is per connection without the process's fixed costs.
# -g picks the load generator: `certgate bench` (default) or, in handshake mode, curl (curl -Z
# --no-sessionid, 4 in parallel, Connection: close), so that the instructions certgate spends per
# connection can be compared across clients (compare.sh measures certgate's CPU time per
# handshake higher under curl than under certgate bench or openssl s_time). Both offer only
# X25519, as compare.sh pins it.
# Env: CERTGATE_BIN (default target/release/certgate), WARMUP (500; 100 in handshake mode),
# PORT_BASE (18540), KEEP=1 keeps the work directory with the callgrind files: part .2 is the
# measured requests (part .1 the short run), read it with `callgrind_annotate --threshold=100
# --auto=no FILE.2`. The frames still on the stack when a part was dumped (main, the runtime's
# loop) show 100% there, callgrind_annotate counting their `calls=0` line as their own cost,
# and with the default threshold that row is all it prints.
# Needs valgrind (apt-get install valgrind), openssl and python3.
set -euo pipefail
MODE=keepalive REQUESTS=2000 GEN=certgate
while getopts "m:n:g:" opt; do
    case $opt in
        m) MODE=$OPTARG ;;
        n) REQUESTS=$OPTARG ;;
        g) GEN=$OPTARG ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
VARIANTS=("$@")
[[ ${#VARIANTS[@]} -gt 0 ]] || VARIANTS=(certgate certgate-kerberos certgate-kerberos-token)
[[ $MODE == keepalive || $MODE == handshake ]] || { echo "-m keepalive or handshake" >&2; exit 2; }
[[ $GEN == certgate || ($GEN == curl && $MODE == handshake) ]] ||
    { echo "-g certgate, or -g curl with -m handshake" >&2; exit 2; }
if [[ $MODE == handshake ]]; then WARMUP=${WARMUP:-100}; else WARMUP=${WARMUP:-500}; fi
PORT_BASE=${PORT_BASE:-18540}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/lib/revocation_pki.sh
source "$REPO/benches/lib/revocation_pki.sh"
BIN=${CERTGATE_BIN:-$REPO/target/release/certgate}
[[ -x $BIN ]] || { echo "no $BIN: cargo build --release --features kerberos, or set CERTGATE_BIN" >&2; exit 1; }
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o DPkg::Lock::Timeout=900 --no-install-recommends valgrind >&2
if [[ " ${VARIANTS[*]} " == *" certgate-kerberos"* && -z ${KRB_BACKEND_SPN:-} ]]; then
    echo "the Kerberos variants need the test KDC: run under scripts/with-ad.sh" >&2
    exit 1
fi
PORT=$PORT_BASE BACKEND_PORT=$((PORT_BASE + 1)) CDP_PORT=$((PORT_BASE + 2))
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
        -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null
    openssl req "${ec[@]}" -keyout server.key -out server.csr -subj '/CN=localhost' 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out server.crt \
        -extfile <(printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n') 2>/dev/null
    openssl req "${ec[@]}" -keyout client.key -out client.csr -subj '/CN=client' 2>/dev/null
    client_ext='extendedKeyUsage=clientAuth\n'
    # shellcheck disable=SC2059 # the extensions are printf text on purpose
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out client.crt \
        -extfile <(printf "$client_ext") 2>/dev/null
    # The same key with a CDP, and the CRL it names (certgate-revocation).
    revocation_pki "$CDP_PORT" "$client_ext"
)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/cdp" "$CDP_PORT" >"$WORK/cdp.log" 2>&1 &
PIDS+=($!)
wait_port "$CDP_PORT" "$WORK/cdp.log"
"$BIN" echo-backend --listen "127.0.0.1:$BACKEND_PORT" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
wait_port "$BACKEND_PORT"

# measure NAME: prints "NAME instructions/request".
measure() {
    local name=$1 kerberos= extra= client=client user='BENCH\\client' service= pid out
    case $name in
        certgate) ;;
        certgate-kerberos) kerberos="[site.backend_kerberos]
spn = \"$KRB_BACKEND_SPN\"" ;;
        certgate-kerberos-token) kerberos="[site.backend_kerberos]
spn = \"$KRB_BACKEND_SPN\"
persist_auth = false" ;;
        certgate-revocation) client=client-rev extra='[site.revocation]
check = "chain"' ;;
        *) echo "unknown variant $name" >&2; exit 2 ;;
    esac
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
certificate_file = "$WORK/$client.crt"
$kerberos
$extra
EOF
    out=$WORK/$name.callgrind
    RUST_LOG=warn valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out.%p" \
        "$BIN" run --worker-threads 1 -c "$WORK/$name.toml" >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_port "$PORT" "$WORK/$name.log"
    load() {
        if [[ $GEN == curl ]]; then
            local ok
            ok=$(curl -s -Z --parallel-max 4 --http1.1 --no-sessionid --tlsv1.3 --curves X25519 \
                -H 'Connection: close' --cacert "$WORK/ca.crt" --cert "$WORK/$client.crt" \
                --key "$WORK/client.key" -o /dev/null -w '%{http_code}\n' \
                "https://localhost:$PORT/[1-$1]" 2>/dev/null | grep -c '^200$' || true)
            [[ $ok == "$1" ]] || { echo "curl: $ok of $1 requests got 200" >&2; exit 1; }
            return
        fi
        "$BIN" bench "https://localhost:$PORT/" --cert "$WORK/$client.crt" --key "$WORK/client.key" \
            --ca "$WORK/ca.crt" --mode "$MODE" -c 4 -n "$1" -d 300 --kx-groups X25519 --quiet >/dev/null
    }
    load "$WARMUP"
    if [[ $name == certgate-revocation ]]; then
        grep -q 'GET /ca.crl' "$WORK/cdp.log" ||
            { echo "certgate-revocation did not fetch the CRL during the warm-up" >&2; exit 1; }
        # A refusal (403.13 if the CRL did not verify) would measure less work, not revocation.
        code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/ca.crt" --cert "$WORK/$client.crt" \
            --key "$WORK/client.key" "https://localhost:$PORT/" || true)
        [[ $code == 200 ]] || { echo "certgate-revocation answered $code, not 200" >&2; exit 1; }
    fi
    # Two measured loads (keep-alive: each on its own 4 new client connections): the difference
    # of their counts is REQUESTS - REQUESTS/4 requests without the fixed costs.
    callgrind_control -z >/dev/null 2>&1
    load $((REQUESTS / 4))
    callgrind_control -d >/dev/null 2>&1
    callgrind_control -z >/dev/null 2>&1
    load "$REQUESTS"
    callgrind_control -d >/dev/null 2>&1
    sleep 1
    python3 - "$name" "$REQUESTS" "$WORK" "$MODE" <<'PY'
import glob, sys
name, n, work, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def total(part):
    for f in glob.glob(f"{work}/{name}.callgrind.*.{part}"):
        for line in open(f, errors="replace"):
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    sys.exit(f"no callgrind dump {part} for {name}")
short, full = total(1), total(2)
per = (full - short) / (n - n // 4)
what = "request" if mode == "keepalive" else "handshake + request"
print(f"{name:<24} {per:>10,.0f} instructions per {what} "
      f"(whole loads: {full / n:,.0f} at {n}, {short / (n // 4):,.0f} at {n // 4})")
PY
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

echo "callgrind, user-space instructions per $MODE request ($REQUESTS after $WARMUP, $GEN as the client):"
for variant in "${VARIANTS[@]}"; do
    measure "$variant"
done
