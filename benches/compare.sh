#!/usr/bin/env bash
# certgate vs nginx (and HAProxy with -s haproxy) on the same mTLS job, side by side, on loopback.
#
# Both proxies terminate TLS 1.3 with an ECDSA P-256 server key, require a client certificate
# from the same CA, and forward to the same plain-HTTP backend over a keep-alive upstream with
# the client's subject DN and certificate as headers. `certgate bench` drives each one in
# handshake mode (one full handshake per request) and keepalive mode, and the script reads the
# server's CPU time from /proc before and after, so the table shows CPU µs per request next to
# the rate and latency: on a shared 2-core box the CPU cost is the number that transfers. The
# CPU time is also split into user (the proxy's own code: TLS records, HTTP, policy) and sys
# (the kernel's TCP and scheduling work on the proxy's behalf).
#
# Load generators (-g): `certgate` (certgate bench, all modes), and two nobody here wrote:
# `s_time` (openssl s_time -new -www: handshake, one GET, close; several processes; handshake
# mode only) and `curl` (handshake mode: curl --parallel --no-sessionid with Connection: close,
# a full handshake plus one proxied HTTP/1.1 request per connection; keepalive mode: the same
# curl without them, so its parallel transfers reuse up to -c connections, each carrying
# thousands of requests, and the handshakes weigh a few percent at most). Each generator measures
# each server in each of -r rounds: the servers of one generator and mode run back to back, each
# in a fresh process, in an order reversed every other round, and the summary prints every
# round's ratio of certgate to each other proxy and the spread. With -f the in-process handshake floor (benches/handshake.rs) runs in the same
# session on the server core with the same keys.
#
# Placement (override with env): load generator on core 0, proxy and backend on core 1.
# The backend shares the proxy's core so the generator keeps a whole core; its CPU is reported
# separately, and it is the same backend for both proxies.
#
# Usage: benches/compare.sh [-d SECS] [-c CONNS] [-m "handshake keepalive"] [-s "nginx certgate"]
#                           [-g "certgate s_time curl"] [-r ROUNDS] [-f] [-k]
#   -s haproxy: Debian's HAProxy 2.6 (OpenSSL 3.0) on the same job, one thread.
#   -s nginx-default-upstream: nginx with proxy_pass's defaults (HTTP/1.0, a new backend
#      connection per request) instead of a keep-alive upstream; what an untuned nginx costs.
#   -s certgate-kerberos: certgate with Kerberos to the backend (S4U as EXAMPLE\alice, warm
#      ticket cache) and connection-bound authentication (`persist_auth`, the default): each
#      backend connection carries one Negotiate token, on its first request; the backend (nginx)
#      answers it normally (200, no challenge), as IIS does once it accepted the token, so the
#      connection counts as authenticated and alice's further body-less requests go on it without
#      a token. The warm-up makes the KDC exchange and the per-connection tokens; what the
#      measured seconds add over `certgate` is certgate's per-request Kerberos work on an
#      authenticated connection (principal, bound-connection checkout, a copy of the request
#      head for a possible resend, counters). The backend does no GSS-API work (its CPU is
#      reported apart anyway).
#   -s certgate-kerberos-token: the same with `persist_auth = false`: a fresh token (GSS-API
#      init_sec_context from the cached ticket, on the blocking pool) with every request.
#      Both need the test KDC's environment:
#        bash scripts/with-ad.sh bash benches/compare.sh \
#          -s "certgate certgate-kerberos certgate-kerberos-token" -m keepalive -g certgate -r 3
#      The summary prints each Kerberos variant's server CPU per request over `certgate`'s, per
#      round, and each process's certgate_kerberos_backend_auth_total (how=token: tokens made,
#      one per backend connection with persist_auth; how=connection: requests without one).
#      benches/callgrind.sh counts instructions for the same three variants, which the
#      neighbours' load does not move. Results: README, "Kerberos to the backend".
#   -s certgate-revocation: certgate checking revocation as IIS does (`check = "chain"`): its
#      client certificate names a CRL Distribution Point served by a local HTTP server (python3,
#      on the backend core) with a 1,000-entry CRL; the cache is warm before measuring (the
#      warm-up fetches it, the script checks the CDP was asked). Compare with plain certgate:
#        bash benches/compare.sh -s "certgate certgate-revocation" -m handshake -r 3
#   -d  seconds per measurement (default 10)      -c  concurrent connections (default 16)
#   -m  certgate-bench modes (handshake, resume, keepalive) -s  servers (nginx, certgate)
#   -g  load generators (default: certgate s_time curl)  -r  rounds (default 1)
#   -f  also run the in-process handshake floor (cargo bench --bench handshake)
#   -p  also profile certgate under each generator with perf (cpu-clock sampling, kernel
#       included, plus perf stat counts; separate runs after the measured ones) and print where
#       the CPU of one full handshake goes, in µs per generator (benches/perf_buckets.py)
#   -k  keep the work directory (configs, logs, raw JSON) instead of deleting it
# Env: CERTGATE_BIN (skip cargo build), GEN_CPU, SERVER_CPU, BACKEND_CPU, PORT_BASE (18440),
#      WARMUP (2 s), BACKEND=nginx|certgate (certgate = `certgate echo-backend`), CERTGATE_LOG,
#      KX_GROUPS (default x25519: Debian's nginx/OpenSSL 3.0 has no X25519MLKEM768 while rustls
#      prefers it, so without pinning the comparison would mostly measure the key exchange;
#      set KX_GROUPS= to let each server pick), SUITES (TLS 1.3 cipher suites in the server's
#      order, given to both servers, default certgate's own default order with AES-128-GCM first:
#      nginx honours the client's order unless told otherwise, and the OpenSSL clients here
#      prefer AES-256-GCM-SHA384, whose SHA-384 key schedule costs both servers more; set
#      SUITES= to run each server on its own default). The summary prints the suite an OpenSSL
#      client ends up with on each server.
#
# Needs: nginx (apt-get install nginx-light), haproxy for -s haproxy, openssl, taskset (util-linux), python3, a Rust
# toolchain unless CERTGATE_BIN is set. Everything runs as the current user in a temp dir.
set -euo pipefail

DURATION=${DURATION:-10}
CONC=${CONC:-16}
MODES=${MODES:-"handshake keepalive"}
SERVERS=${SERVERS:-"nginx certgate"}
KEEP=${KEEP:-0}
WARMUP=${WARMUP:-2}
GEN_CPU=${GEN_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
BACKEND_CPU=${BACKEND_CPU:-1}
PORT_BASE=${PORT_BASE:-18440}
BACKEND=${BACKEND:-nginx}
CERTGATE_LOG=${CERTGATE_LOG:-warn}
KX_GROUPS=${KX_GROUPS-x25519}
SUITES=${SUITES-TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256}
GENERATORS=${GENERATORS:-"certgate s_time curl"}
ROUNDS=${ROUNDS:-1}
FLOOR=${FLOOR:-0}
PROFILE=${PROFILE:-0}
S_TIME_PROCS=${S_TIME_PROCS:-4}

while getopts "d:c:m:s:g:r:fpkh" opt; do
    case $opt in
        d) DURATION=$OPTARG ;;
        c) CONC=$OPTARG ;;
        m) MODES=$OPTARG ;;
        s) SERVERS=$OPTARG ;;
        g) GENERATORS=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        f) FLOOR=1 ;;
        p) PROFILE=1 ;;
        k) KEEP=1 ;;
        h) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) exit 2 ;;
    esac
done

NGINX_PORT=$PORT_BASE
CERTGATE_PORT=$((PORT_BASE + 1))
BACKEND_PORT=$((PORT_BASE + 2))
ADMIN_PORT=$((PORT_BASE + 3))
CDP_PORT=$((PORT_BASE + 4))
HAPROXY_PORT=$((PORT_BASE + 5))
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/lib/revocation_pki.sh
source "$REPO/benches/lib/revocation_pki.sh"
CLK_TCK=$(getconf CLK_TCK)

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }

for tool in openssl taskset python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || true)}
[[ -n $NGINX_BIN ]] || die "nginx not found (apt-get install -y nginx-light)"
HAPROXY_BIN=${HAPROXY_BIN:-$(command -v haproxy || true)}
[[ " $SERVERS " != *" haproxy "* || -n $HAPROXY_BIN ]] || die "haproxy not found (apt-get install -y haproxy)"
[[ $(nproc) -ge 2 ]] || log "warning: fewer than 2 CPUs; pinning will overlap"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/certgate-compare.XXXXXX")
PIDS=()

cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $KEEP == 1 || $rc != 0 ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until something accepts on $1 while process $2 is alive.
wait_port() {
    local port=$1 pid=$2 name=$3
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during start-up; see $WORK/$name.log"
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    die "$name did not listen on 127.0.0.1:$port within 10 s"
}

for port in "$NGINX_PORT" "$CERTGATE_PORT" "$BACKEND_PORT" "$ADMIN_PORT" "$CDP_PORT" "$HAPROXY_PORT"; do
    port_free "$port" || die "port $port is in use; set PORT_BASE"
done

# --- certgate binary -------------------------------------------------------------------------
if [[ -z ${CERTGATE_BIN:-} ]]; then
    features=()
    # Only the Kerberos servers need the feature (and libkrb5-dev + libclang to build it).
    [[ " $SERVERS " != *" certgate-kerberos"* ]] || features=(--features kerberos)
    log "building certgate (cargo build --release ${features[*]})"
    (cd "$REPO" && cargo build --release --quiet "${features[@]}") || die "cargo build --release failed"
    CERTGATE_BIN=$REPO/target/release/certgate
fi
"$CERTGATE_BIN" bench --help >/dev/null 2>&1 || die "$CERTGATE_BIN has no 'bench' subcommand"

# --- PKI: one CA, server and client certificates, all ECDSA P-256 -------------------------------
log "PKI in $WORK/pki"
mkdir -p "$WORK/pki"
(
    cd "$WORK/pki"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 2 -subj '/CN=certgate bench CA' \
        -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
        2>/dev/null
    openssl req "${ec[@]}" -keyout server.key -out server.csr -subj '/CN=localhost' 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out server.crt \
        -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n') \
        2>/dev/null
    openssl req "${ec[@]}" -keyout client.key -out client.csr -subj '/DC=test/DC=bench/CN=client' 2>/dev/null
    client_ext='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
    # shellcheck disable=SC2059 # the extensions are printf text on purpose
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out client.crt \
        -extfile <(printf "$client_ext") 2>/dev/null
    # The same key again with a CDP, and the CRL it names (certgate-revocation).
    revocation_pki "$CDP_PORT" "$client_ext"
)
PKI=$WORK/pki

# --- nginx configs ---------------------------------------------------------------------------
# Common prelude: everything nginx writes stays under its own prefix.
nginx_conf() {
    local dir=$1 body=$2
    mkdir -p "$dir/logs" "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 1000000;
$body
}
EOF
}

# Starts nginx in the foreground (-g 'daemon off;') so the PID we hold is the master; sets
# STARTED_PID. Not called in $(...): the PID must be a child of this shell for cleanup.
start_nginx() {
    local name=$1 cpu=$2 dir=$WORK/$1
    "$NGINX_BIN" -t -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$WORK/$name.log" 2>&1 \
        || die "nginx config test failed for $name: $(cat "$WORK/$name.log")"
    taskset -c "$cpu" "$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' \
        >>"$WORK/$name.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# --- backend ----------------------------------------------------------------------------------
case $BACKEND in
    nginx)
        nginx_conf "$WORK/backend" "    server {
        listen 127.0.0.1:$BACKEND_PORT;
        location / { return 200 \"ok\\n\"; }
    }"
        start_nginx backend "$BACKEND_CPU"
        BACKEND_PID=$STARTED_PID
        ;;
    certgate)
        taskset -c "$BACKEND_CPU" "$CERTGATE_BIN" echo-backend --listen "127.0.0.1:$BACKEND_PORT" \
            >"$WORK/backend.log" 2>&1 &
        BACKEND_PID=$!
        PIDS+=("$BACKEND_PID")
        ;;
    *) die "BACKEND must be nginx or certgate" ;;
esac
wait_port "$BACKEND_PORT" "$BACKEND_PID" backend

# --- the CRL distribution point (certgate-revocation) -------------------------------------------
if [[ " $SERVERS " == *" certgate-revocation "* ]]; then
    taskset -c "$BACKEND_CPU" python3 -m http.server --bind 127.0.0.1 --directory "$PKI/cdp" "$CDP_PORT" \
        >"$WORK/cdp.log" 2>&1 &
    CDP_PID=$!
    PIDS+=("$CDP_PID")
    wait_port "$CDP_PORT" "$CDP_PID" cdp
fi

# --- the two proxies --------------------------------------------------------------------------
declare -A SERVER_PID SERVER_PORT

# nginx: a keep-alive upstream (the tuned set-up, like certgate's backend pool). nginx-default-
# upstream: proxy_pass with nginx's defaults, HTTP/1.0 and a new backend connection per request,
# as many nginx configurations run it.
start_nginx_proxy() {
    local name=${1:-nginx} upstream location
    upstream="    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 64;
    }"
    location="            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_pass http://backend;"
    if [[ $name == nginx-default-upstream ]]; then
        upstream=
        location="            proxy_pass http://127.0.0.1:$BACKEND_PORT;"
    fi
    nginx_conf "$WORK/nginx" "$upstream
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        server_name localhost;
        ssl_protocols TLSv1.3;
${SUITES:+ssl_prefer_server_ciphers on;
        ssl_conf_command Ciphersuites $SUITES;}
        ssl_certificate $PKI/server.crt;
        ssl_certificate_key $PKI/server.key;
        ssl_client_certificate $PKI/ca.crt;
        ssl_verify_client on;
        ssl_verify_depth 2;
        location / {
            proxy_set_header X-Client-Cert-Subject \$ssl_client_s_dn;
            proxy_set_header X-Client-Cert \$ssl_client_escaped_cert;
$location
        }
    }"
    start_nginx nginx "$SERVER_CPU"
    SERVER_PID[$name]=$STARTED_PID
    SERVER_PORT[$name]=$NGINX_PORT
    wait_port "$NGINX_PORT" "${SERVER_PID[$name]}" nginx
}

# HAProxy (Debian's, OpenSSL 3.0) on the same job: one thread, TLS 1.3 only, the same
# suites in the server's order (HAProxy's default), client certificate required from the same
# CA, subject DN and the certificate (base64 DER) as headers, keep-alive to the backend with
# connections shared between clients (http-reuse always), no logging.
start_haproxy_proxy() {
    local dir=$WORK/haproxy
    mkdir -p "$dir"
    cat "$PKI/server.crt" "$PKI/server.key" >"$dir/server.pem"
    cat >"$dir/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
    pidfile $dir/haproxy.pid
${SUITES:+    ssl-default-bind-ciphersuites $SUITES}
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option http-keep-alive
    http-reuse always
frontend mtls
    bind 127.0.0.1:$HAPROXY_PORT ssl crt $dir/server.pem ca-file $PKI/ca.crt verify required ssl-min-ver TLSv1.3 alpn http/1.1
    http-request set-header X-Client-Cert-Subject %[ssl_c_s_dn]
    http-request set-header X-Client-Cert %[ssl_c_der,base64]
    default_backend backend
backend backend
    server b1 127.0.0.1:$BACKEND_PORT
EOF
    "$HAPROXY_BIN" -c -q -f "$dir/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 ||
        die "haproxy config check failed: $(cat "$WORK/haproxy.log")"
    taskset -c "$SERVER_CPU" "$HAPROXY_BIN" -db -f "$dir/haproxy.cfg" >>"$WORK/haproxy.log" 2>&1 &
    SERVER_PID[haproxy]=$!
    PIDS+=("${SERVER_PID[haproxy]}")
    SERVER_PORT[haproxy]=$HAPROXY_PORT
    wait_port "$HAPROXY_PORT" "${SERVER_PID[haproxy]}" haproxy
}

start_certgate_proxy() {
    local name=${1:-certgate} kerberos= target= user='BENCH\\client' client=client revocation=
    local suites=
    [[ -n $SUITES ]] && suites="cipher_suites = [\"${SUITES//:/\", \"}\"]"
    if [[ $name == certgate-revocation ]]; then
        client=client-rev
        revocation='[site.revocation]
check = "chain"'
    fi
    if [[ $name == certgate-kerberos* ]]; then
        [[ -n ${KRB_BACKEND_SPN:-} && -n ${KRB5_CONFIG:-} ]] ||
            die "certgate-kerberos needs the test KDC: run under scripts/with-ad.sh"
        kerberos="
[kerberos]
realm = \"EXAMPLE.TEST\"
principal = \"svc-certgate\"
password_env = \"AD_BIND_PASSWORD\"
"
        target="[site.backend_kerberos]
spn = \"$KRB_BACKEND_SPN\"
persist_auth = $([[ $name == certgate-kerberos-token ]] && echo false || echo true)"
        user='EXAMPLE\\alice'
    fi
    if ! "$CERTGATE_BIN" run --help >/dev/null 2>&1; then
        log "warning: $CERTGATE_BIN has no 'run' subcommand yet; skipping certgate"
        return 1
    fi
    # The lead's config format. Headers other than the subject and the certificate are switched
    # off so both proxies send the backend the same information; certgate additionally maps the
    # certificate to a user (one-to-one), which is the job nginx cannot do.
    cat >"$WORK/certgate.toml" <<EOF
[server]
listen = ["127.0.0.1:$CERTGATE_PORT"]
admin_listen = "127.0.0.1:$ADMIN_PORT"
$suites

[headers]
issuer = ""
serial = ""
thumbprint = ""
client_cert = ""
$kerberos
[[site]]
name = "bench"
host_names = ["localhost"]
certificate = "$PKI/server.crt"
private_key = "$PKI/server.key"
client_ca = ["$PKI/ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
anonymous_authentication = false
backend = "http://127.0.0.1:$BACKEND_PORT"

[site.iis_client_certificate_mapping_authentication]
enabled = true

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "$user"
certificate_file = "$PKI/$client.crt"
$target
$revocation
EOF
    RUST_LOG=$CERTGATE_LOG taskset -c "$SERVER_CPU" "$CERTGATE_BIN" run -c "$WORK/certgate.toml" \
        >"$WORK/certgate.log" 2>&1 &
    SERVER_PID[$name]=$!
    PIDS+=("${SERVER_PID[$name]}")
    SERVER_PORT[$name]=$CERTGATE_PORT
    wait_port "$CERTGATE_PORT" "${SERVER_PID[$name]}" "$name"
}

# "utime stime" in clock ticks of a process and its direct children (nginx master + workers).
cpu_ticks() {
    local user=0 sys=0 pid stat rest
    for pid in "$@" $(for p in "$@"; do cat "/proc/$p/task/$p/children" 2>/dev/null || true; done); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${stat##*) }                    # fields from 3 on; comm may contain spaces
        read -r -a f <<<"$rest"
        user=$((user + f[11]))              # field 14 (utime)
        sys=$((sys + f[12]))                # field 15 (stime)
    done
    echo "$user $sys"
}

# "busy total" jiffies of one CPU from /proc/stat, to tell whether the server core was saturated.
core_jiffies() {
    local line
    line=$(grep "^cpu$1 " /proc/stat)
    read -r -a f <<<"$line"
    # user nice system idle iowait irq softirq steal
    echo "$((f[1] + f[2] + f[3] + f[6] + f[7] + f[8])) $((f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7] + f[8]))"
}

bench() {
    local port=$1 mode=$2 secs=$3 kx=()
    [[ -n $KX_GROUPS ]] && kx=(--kx-groups "$KX_GROUPS")
    taskset -c "$GEN_CPU" "$CERTGATE_BIN" bench "https://localhost:$port/" \
        --cert "$PKI/$CLIENT.crt" --key "$PKI/client.key" --ca "$PKI/ca.crt" \
        --mode "$mode" -c "$CONC" -d "$secs" "${kx[@]}" --json --quiet
}

# openssl s_time -new: S_TIME_PROCS sequential clients, each a full handshake, one proxied
# HTTP/1.1 GET read to its end, and close. s_time sends "GET <page> HTTP/1.0" with no Host; the
# page below smuggles HTTP/1.1, Host and Connection: close in and leaves " HTTP/1.0" as the value
# of a dummy header, so both proxies forward the request. Without -www s_time closes right after
# its Finished, the server's next read fails with ECONNRESET, and the handshake is never
# completed (certgate counted every one as outcome="io"): the CPU measured was that of an
# unfinished handshake. The bytes read per connection are checked to be a whole response.
# Writes JSON like `certgate bench --json` with the fields the summary uses.
S_TIME_PAGE=$'/s_time HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Pad:'
gen_s_time() {
    local port=$1 secs=$2 i pids=() ok=0 n per
    for i in $(seq "$S_TIME_PROCS"); do
        taskset -c "$GEN_CPU" openssl s_time -connect "127.0.0.1:$port" -new -tls1_3 -time "$secs" \
            -www "$S_TIME_PAGE" -cert "$PKI/$CLIENT.crt" -key "$PKI/client.key" -CAfile "$PKI/ca.crt" \
            >"$WORK/s_time.$i.out" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    for i in $(seq "$S_TIME_PROCS"); do
        # "1234 connections in 10.00s; ..." (the first such line is the -new run), then
        # "1234 connections in 11 real seconds, 145 bytes read per connection"
        n=$(grep -m1 -o '^[0-9]* connections in [0-9.]*s' "$WORK/s_time.$i.out" | cut -d' ' -f1 || true)
        per=$(grep -m1 -o '[0-9]* bytes read per connection' "$WORK/s_time.$i.out" | cut -d' ' -f1 || true)
        ((${n:-0} == 0 || ${per:-0} >= 100)) ||
            die "s_time read ${per:-0} bytes per connection, not whole responses; see $WORK/s_time.$i.out"
        ok=$((ok + ${n:-0}))
    done
    gen_json "$ok" "$secs"
}

# curl --parallel, HTTP/1.1. handshake: --no-sessionid and Connection: close, so every transfer
# is a new connection with a full handshake and one proxied GET. keepalive: transfers reuse the
# parallel connections.
declare -A CURL_RATE=([handshake]=100 [keepalive]=2000)
gen_curl() {
    # A fixed number of transfers (curl loses its -w output when interrupted): SECS at the rate
    # of the previous run in this mode (the warm-up before each measured run), so a measured run
    # lasts about SECS and its CPU time is many clock ticks; the rate is what they took.
    local port=$1 secs=$2 mode=$3 ok t0 t1 per_conn=()
    local n=$((secs * CURL_RATE[$mode]))
    [[ $mode == handshake ]] && per_conn=(--no-sessionid -H 'Connection: close')
    t0=$(date +%s.%N)
    taskset -c "$GEN_CPU" timeout 300 curl -s -Z --parallel-max "$CONC" --http1.1 \
        "${per_conn[@]}" --tlsv1.3 ${KX_GROUPS:+--curves "$KX_GROUPS"} \
        --cacert "$PKI/ca.crt" --cert "$PKI/$CLIENT.crt" --key "$PKI/client.key" \
        -o /dev/null -w '%{http_code} %{num_connects}\n' "https://localhost:$port/[1-$n]" \
        >"$WORK/curl.out" 2>/dev/null || true
    t1=$(date +%s.%N)
    ok=$(grep -c '^200 ' "$WORK/curl.out" || true)
    CURL_RATE[$mode]=$(python3 -c "print(max(50, int(${ok:-0} / max($t1 - $t0, 0.001))))")
    if [[ $mode == keepalive ]]; then
        # New connections among the transfers: a handful, or the run measured handshakes.
        log "curl keep-alive: $(awk '{c += $2} END {print c + 0}' "$WORK/curl.out") connections for ${ok:-0} requests"
    fi
    gen_json "${ok:-0}" "$(python3 -c "print($t1 - $t0)")"
}

gen_json() {
    python3 -c "import json,sys; ok=int(sys.argv[1]); s=float(sys.argv[2]); print(json.dumps({'ok': ok, 'rate_per_s': ok / s, 'elapsed_s': s, 'latency': None, 'client_cpu_s': None, 'errors_total': 0, 'resumed_fraction': 0.0, 'negotiated': None}))" "$1" "$2"
}

# generate GENERATOR PORT MODE SECS
generate() {
    case $1 in
        certgate) bench "$2" "$3" "$4" ;;
        s_time) gen_s_time "$2" "$4" ;;
        curl) gen_curl "$2" "$4" "$3" ;;
        *) die "unknown generator $1" ;;
    esac
}

RESULTS=$WORK/results.tsv
printf 'round\tgenerator\tserver\tmode\tjson\tserver_user_s\tserver_sys_s\tbackend_cpu_s\tcore_busy\n' >"$RESULTS"

# Starts one proxy by name and sets CLIENT (the certificate its generator presents).
start_server() {
    CLIENT=client
    case $1 in
        nginx | nginx-default-upstream) start_nginx_proxy "$1" ;;
        haproxy) start_haproxy_proxy ;;
        certgate | certgate-kerberos | certgate-kerberos-token) start_certgate_proxy "$1" || return 1 ;;
        certgate-revocation)
            start_certgate_proxy "$1" || return 1
            CLIENT=client-rev
            # Warm the cache: one request, which must pass and must have fetched the CRL.
            code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" --cert "$PKI/$CLIENT.crt" \
                --key "$PKI/client.key" "https://localhost:$CERTGATE_PORT/" || true)
            [[ $code == 200 ]] || die "certgate-revocation answered $code; see $WORK/certgate.log"
            grep -q 'GET /ca.crl' "$WORK/cdp.log" || die "certgate-revocation did not fetch the CRL"
            ;;
        *) die "unknown server $1" ;;
    esac
    # The suite an OpenSSL client (curl's and s_time's library, AES-256 first) ends up with.
    [[ -s $WORK/suite.$1 ]] || openssl s_client -connect "127.0.0.1:${SERVER_PORT[$1]}" \
        -servername localhost -tls1_3 -CAfile "$PKI/ca.crt" -cert "$PKI/$CLIENT.crt" \
        -key "$PKI/client.key" </dev/null 2>/dev/null | sed -n 's/.*Cipher is //p' | head -1 \
        >"$WORK/suite.$1" || true
}

stop_server() {
    if [[ $1 == certgate-kerberos* ]]; then
        # Tokens made vs requests sent on an authenticated connection, this process.
        curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep '^certgate_kerberos_backend_auth_total' |
            sed "s/^/round $round $generator $mode $1: /" >>"$WORK/kerberos_auth.txt" || true
    fi
    kill -TERM "${SERVER_PID[$1]}" 2>/dev/null || true
    wait "${SERVER_PID[$1]}" 2>/dev/null || true
}

# The servers compared on one generator and mode run back to back, each in a fresh process
# with its own warm-up, and their order is reversed every other round (A B, B A, ...): the
# host's speed drifts over minutes on a shared VM, and measuring the pair seconds apart, in
# alternating order, keeps that drift out of their ratio.
for round in $(seq "$ROUNDS"); do
    order=$SERVERS
    ((round % 2 == 0)) && order=$(printf '%s\n' $SERVERS | tac | tr '\n' ' ')
    for generator in $GENERATORS; do
    gen_modes=$MODES
    case $generator in
        certgate) ;;
        curl) gen_modes=$(printf '%s\n' $MODES | grep -xE 'handshake|keepalive' | tr '\n' ' ') ;;
        *) gen_modes=handshake ;;
    esac
    for mode in $gen_modes; do
    for server in $order; do
        start_server "$server" || continue
        log "round $round: $generator / $mode / $server: warm-up ${WARMUP}s, then ${DURATION}s"
        generate "$generator" "${SERVER_PORT[$server]}" "$mode" "$WARMUP" >/dev/null
        read -r su0 ss0 <<<"$(cpu_ticks "${SERVER_PID[$server]}")"
        read -r bu0 bs0 <<<"$(cpu_ticks "$BACKEND_PID")"
        read -r busy0 total0 <<<"$(core_jiffies "$SERVER_CPU")"
        out=$WORK/$round-$generator-$server-$mode.json
        generate "$generator" "${SERVER_PORT[$server]}" "$mode" "$DURATION" >"$out"
        read -r su1 ss1 <<<"$(cpu_ticks "${SERVER_PID[$server]}")"
        read -r bu1 bs1 <<<"$(cpu_ticks "$BACKEND_PID")"
        read -r busy1 total1 <<<"$(core_jiffies "$SERVER_CPU")"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$generator" "$server" "$mode" "$out" \
            "$(python3 -c "print(($su1 - $su0) / $CLK_TCK)")" \
            "$(python3 -c "print(($ss1 - $ss0) / $CLK_TCK)")" \
            "$(python3 -c "print(($bu1 + $bs1 - $bu0 - $bs0) / $CLK_TCK)")" \
            "$(python3 -c "print(100 * ($busy1 - $busy0) / max($total1 - $total0, 1))")" >>"$RESULTS"
        # One proxy at a time on the server core.
        stop_server "$server"
    done
    done
    done
done

PROFILE_OUT=$WORK/profile.txt
: >"$PROFILE_OUT"
if [[ $PROFILE == 1 ]]; then
    command -v perf >/dev/null || die "perf not found (apt-get install linux-perf)"
    CLIENT=client
    start_certgate_proxy
    profiles=()
    # Each generator in turn on the same certgate process, so the buckets compare like with like.
    for generator in $GENERATORS; do
        log "profile: perf on certgate during ${DURATION}s of $generator full handshakes"
        generate "$generator" "${SERVER_PORT[certgate]}" handshake "$WARMUP" >/dev/null
        read -r su0 ss0 <<<"$(cpu_ticks "${SERVER_PID[certgate]}")"
        perf record -q -e cpu-clock -F 1999 -g -p "${SERVER_PID[certgate]}" \
            -o "$WORK/perf.$generator.data" -- sleep "$DURATION" >/dev/null 2>&1 &
        record_pid=$!
        perf stat -x, -e task-clock,context-switches,page-faults,raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait \
            -p "${SERVER_PID[certgate]}" -o "$WORK/perf.$generator.stat" -- sleep "$DURATION" \
            >/dev/null 2>&1 &
        stat_pid=$!
        generate "$generator" "${SERVER_PORT[certgate]}" handshake "$DURATION" >"$WORK/perf.$generator.json"
        wait "$record_pid" "$stat_pid" || true
        read -r su1 ss1 <<<"$(cpu_ticks "${SERVER_PID[certgate]}")"
        perf report -i "$WORK/perf.$generator.data" --no-children --sort dso,sym --stdio -g none \
            --percent-limit 0 2>/dev/null >"$WORK/perf.$generator.txt" || die "perf report failed"
        profiles+=("$generator" "$WORK/perf.$generator.txt" "$WORK/perf.$generator.stat" \
            "$WORK/perf.$generator.json" "$(python3 -c "print(($su1 + $ss1 - $su0 - $ss0) / $CLK_TCK)")")
    done
    kill -TERM "${SERVER_PID[certgate]}" 2>/dev/null || true
    wait "${SERVER_PID[certgate]}" 2>/dev/null || true
    python3 "$REPO/benches/perf_buckets.py" "${profiles[@]}" >"$PROFILE_OUT" || die "perf summary failed"
fi

FLOOR_OUT=$WORK/floor.txt
: >"$FLOOR_OUT"
if [[ $FLOOR == 1 ]]; then
    log "handshake floor: cargo bench --bench handshake on core $SERVER_CPU with the same PKI"
    (cd "$REPO" && taskset -c "$SERVER_CPU" cargo bench --quiet --bench handshake -- "$PKI" 5 2000) \
        >"$FLOOR_OUT" 2>"$WORK/floor.err" || die "handshake floor bench failed: $(tail -5 "$WORK/floor.err")"
fi

cat "$PROFILE_OUT"
if [[ -s $WORK/kerberos_auth.txt ]]; then
    echo
    echo "Kerberos to the backend, per process (warm-up included): how=token: tokens made;"
    echo "how=connection: requests sent without one on an authenticated connection"
    cat "$WORK/kerberos_auth.txt"
fi
python3 - "$RESULTS" "$CONC" "$DURATION" "$FLOOR_OUT" <<'PY'
import csv, json, os, statistics, sys

path, conc, duration, floor_path = sys.argv[1:5]
work = os.path.dirname(path)
rows = {}
with open(path) as f:
    for r in csv.DictReader(f, delimiter="\t"):
        s = json.load(open(r["json"]))
        ok = max(s["ok"], 1)
        lat = s.get("latency") or {}
        rows[(int(r["round"]), r["generator"], r["server"], r["mode"])] = {
            "rate": s["rate_per_s"],
            "p50": lat.get("p50_us", float("nan")) / 1000,
            "p99": lat.get("p99_us", float("nan")) / 1000,
            "user": float(r["server_user_s"]) * 1e6 / ok,
            "sys": float(r["server_sys_s"]) * 1e6 / ok,
            "cpu": (float(r["server_user_s"]) + float(r["server_sys_s"])) * 1e6 / ok,
            "backend": float(r["backend_cpu_s"]) * 1e6 / ok,
            "gen": 100 * (s["client_cpu_s"] or 0) / s["elapsed_s"] if s["client_cpu_s"] else float("nan"),
            "errors": s["errors_total"],
            "resumed": 100 * s["resumed_fraction"],
            "tls": s.get("negotiated") or "?",
            "core": float(r["core_busy"]),
        }

print(f"\nmTLS proxy comparison: {duration}s per run, {conc} connections (s_time: its own processes), ECDSA P-256 keys")
hdr = (f"{'rnd':>3} {'generator':<9} {'mode':<10} {'server':<23} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
       f"{'cpu µs/req':>10} {'user':>6} {'sys':>6} {'backend µs':>10} {'core%':>6} {'gen%':>5} {'res%':>5} {'err':>4}")
print(hdr)
print("-" * len(hdr))
for (rnd, gen, server, mode), v in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][3], kv[0][0], kv[0][2])):
    print(f"{rnd:>3} {gen:<9} {mode:<10} {server:<23} {v['rate']:>8.0f} {v['p50']:>7.2f} {v['p99']:>7.2f} "
          f"{v['cpu']:>10.1f} {v['user']:>6.1f} {v['sys']:>6.1f} {v['backend']:>10.1f} {v['core']:>6.0f} "
          f"{v['gen']:>5.0f} {v['resumed']:>5.0f} {v['errors']:>4}")

# certgate against each other proxy measured (nginx, nginx-default-upstream, haproxy), round by round.
refs = sorted({k[2] for k in rows if not k[2].startswith("certgate")})
for ref in refs:
    pairs = {}
    for (rnd, gen, server, mode), v in rows.items():
        if server == "certgate" and (rnd, gen, ref, mode) in rows:
            n = rows[(rnd, gen, ref, mode)]
            pairs.setdefault((gen, mode), []).append((v["cpu"] / n["cpu"], v["cpu"], n["cpu"]))
    if not pairs:
        continue
    print(f"\ncertgate / {ref} server CPU per request, each round and the spread (< 1 favours certgate)")
    print(f"{'generator':<9} {'mode':<10} {'rounds':<28} {'median':>7} {'min':>6} {'max':>6}   certgate µs / {ref} µs (median)")
    for (gen, mode), rs in sorted(pairs.items()):
        cpu = [r[0] for r in rs]
        print(f"{gen:<9} {mode:<10} {' '.join(f'{x:.2f}' for x in cpu):<28} {statistics.median(cpu):>7.2f} "
              f"{min(cpu):>6.2f} {max(cpu):>6.2f}   {statistics.median(r[1] for r in rs):.0f} / {statistics.median(r[2] for r in rs):.0f}")
if not refs and not any(k[2].startswith("certgate-") for k in rows):
    print("\n(no ratios: only one server measured)")

# A certgate variant (certgate-revocation, certgate-kerberos) against plain certgate, same rounds.
for variant in sorted({k[2] for k in rows if k[2].startswith("certgate-")}):
    extra = {}
    for (rnd, gen, server, mode), v in rows.items():
        if server == variant and (rnd, gen, "certgate", mode) in rows:
            base = rows[(rnd, gen, "certgate", mode)]
            extra.setdefault((gen, mode), []).append((v["cpu"] / base["cpu"], v["cpu"], base["cpu"]))
    if not extra:
        continue
    print(f"\n{variant} / certgate server CPU per request, each round and the spread (1.05 = 5% more)")
    print(f"{'generator':<9} {'mode':<10} {'rounds':<28} {'median':>7} {'min':>6} {'max':>6}   {variant} µs / certgate µs (median)")
    for (gen, mode), rs in sorted(extra.items()):
        cpu = [r[0] for r in rs]
        print(f"{gen:<9} {mode:<10} {' '.join(f'{x:.3f}' for x in cpu):<28} {statistics.median(cpu):>7.3f} "
              f"{min(cpu):>6.3f} {max(cpu):>6.3f}   {statistics.median(r[1] for r in rs):.0f} / {statistics.median(r[2] for r in rs):.0f}")

floor = {}
for line in open(floor_path):
    if line.startswith("floor "):
        parts = line.split()
        floor[parts[1]] = {k: float(v) for k, v in (p.split("=") for p in parts[2:])}
if floor:
    print("\nin-process handshake floor (server side, same keys and provider, same session):")
    for name, f in floor.items():
        print(f"  {name:<9} median {f['median_us']:.1f} µs (min {f['min_us']:.1f}, max {f['max_us']:.1f}, {int(f['rounds'])} rounds)")
    for gen in sorted({k[1] for k in rows if k[2] == "certgate" and k[3] == "handshake"}):
        c = statistics.median(v["cpu"] for k, v in rows.items() if k[1:] == (gen, "certgate", "handshake"))
        ratios = ", ".join(f"{c / f['median_us']:.2f} x {name}" for name, f in floor.items())
        print(f"  certgate via {gen:<8}: {c:.0f} µs per handshake = {ratios} floor")

print("\nnegotiated (certgate bench; and the suite an OpenSSL client, as curl and s_time, got):")
for server in sorted({k[2] for k in rows}):
    tls = [v["tls"] for k, v in rows.items() if k[2] == server and v["tls"] != "?"]
    try:
        with open(f"{work}/suite.{server}") as f:
            suite = f.read().strip() or "?"
    except OSError:
        suite = "?"
    print(f"  {server:<23} {tls[0] if tls else '?'}; OpenSSL client: {suite}")
print("user/sys split cpu µs/req into the proxy's own code and the kernel's work for it (TCP on")
print("loopback, wakeups, scheduling), which any proxy doing the same 4 segments per request pays.")
print("core% is the server core (proxy + backend + kernel); near 100 means the server side set the")
print("rate. Every handshake row is a full handshake plus one proxied GET.")
PY
