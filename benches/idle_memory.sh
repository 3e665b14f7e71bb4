#!/usr/bin/env bash
# Memory per idle connection: certgate's RSS with N open mTLS keep-alive connections (each has
# done a full handshake and one proxied request, then sits idle), minus its RSS before, scaled
# to 10,000 connections. Clients are Python's ssl module (OpenSSL), on loopback.
#
#   bash benches/idle_memory.sh [N]          # default 2000; CERTGATE_BIN to skip the build
#
# Needs: openssl, python3. Raises its own fd limit; N above ~30000 needs a higher hard limit.
set -euo pipefail
N=${1:-2000}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${CERTGATE_BIN:-} ]]; then
    (cd "$REPO" && cargo build --release --quiet --bin certgate)
    CERTGATE_BIN=$REPO/target/release/certgate
fi
ulimit -n $((N * 2 + 1000))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/certgate-memory.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cd "$WORK"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 2 -subj '/CN=memory CA' \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign' 2>/dev/null
openssl req "${ec[@]}" -keyout server.key -out server.csr -subj '/CN=localhost' 2>/dev/null
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out server.crt \
    -extfile <(printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n') 2>/dev/null
openssl req "${ec[@]}" -keyout client.key -out client.csr -subj '/CN=client' 2>/dev/null
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out client.crt \
    -extfile <(printf 'extendedKeyUsage=clientAuth\n') 2>/dev/null

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(port)
BACKEND_PORT=$(port)
cat >certgate.toml <<EOF
[server]
listen = ["127.0.0.1:$PORT"]
header_read_timeout = "600s"
idle_timeout = "600s"
max_connections = $((N + 100))

[[site]]
name = "memory"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "http://127.0.0.1:$BACKEND_PORT"

[site.iis_client_certificate_mapping_authentication]
enabled = true

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\\\client"
certificate_file = "client.crt"
EOF
"$CERTGATE_BIN" echo-backend --listen "127.0.0.1:$BACKEND_PORT" >backend.log 2>&1 &
PIDS+=($!)
RUST_LOG=warn "$CERTGATE_BIN" run -c certgate.toml >certgate.log 2>&1 &
CG=$!
PIDS+=("$CG")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

python3 - "$PORT" "$N" "$CG" <<'PY'
import socket, ssl, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
ctx = ssl.create_default_context(cafile="ca.crt")
ctx.load_cert_chain("client.crt", "client.key")
ctx.set_alpn_protocols(["http/1.1"])
# Warm-up: the first connections allocate what every later one reuses (pools, caches).
warm = []
for _ in range(50):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(b"GET /warm HTTP/1.1\r\nHost: localhost\r\n\r\n")
    s.recv(65536)
    warm.append(s)
for s in warm:
    s.close()
time.sleep(0.5)
before = rss_kib()
conns = []
t = time.time()
for i in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(b"GET /idle HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    conns.append(s)
time.sleep(1)
after = rss_kib()
per = (after - before) / n
print(f"certgate RSS: {before / 1024:.1f} MiB idle, {after / 1024:.1f} MiB with {n} open mTLS keep-alive connections "
      f"({time.time() - t:.1f}s to open)")
print(f"per connection: {per:.1f} KiB; per 10,000 connections: {per * 10000 / 1024:.0f} MiB")
for s in conns:
    s.close()
PY
