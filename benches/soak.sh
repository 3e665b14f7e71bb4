#!/usr/bin/env bash
# Soak: certgate under connections held open, load, reloads and slow/oversized-header attacks at
# once. Not a CI test (it takes minutes and wants the machine); run it before a release and put
# the numbers in README (Performance > Soak).
#
#   bash benches/soak.sh                     # full scale: 10,000 held connections, 60 reloads
#   SOAK_CONNECTIONS=500 SOAK_SECONDS=15 bash benches/soak.sh   # quick check of the script
#
# What runs, all against one `certgate run` (release build, echo backend behind it):
#   - benches/soak_hold.py: SOAK_CONNECTIONS (10,000) mTLS keep-alive connections, opened first
#     and held open, each sending a request every SOAK_INTERVAL (5) s and checking for a 200;
#   - `certgate bench --mode keepalive -c 32`: the load, whose p99 is the latency during reloads;
#   - a configuration change plus SIGHUP every second for SOAK_SECONDS (60) s, alternating two
#     valid configurations (a mapping description and a location change each time);
#   - slowhttptest (Debian's, installed when missing): slowloris (1,000 connections trickling
#     header lines) and oversized headers (200 connections growing headers past
#     max_header_bytes), for the whole reload window.
# Reported: requests lost (sent without a 200 back: must be 0), RSS and open file descriptors of
# the certgate process before the run and after every client has gone (must come back down: no
# leak), p99 latency of the load and of the held connections during the reloads, reloads done.
set -euo pipefail
cd "$(dirname "$0")/.."

conns=${SOAK_CONNECTIONS:-10000}
secs=${SOAK_SECONDS:-60}
interval=${SOAK_INTERVAL:-5}
load_conc=${SOAK_LOAD_CONCURRENCY:-32}
bin=target/release/certgate

need() { command -v "$1" >/dev/null; }
if ! need slowhttptest || ! need openssl || ! need python3; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 \
    --no-install-recommends slowhttptest openssl python3
fi
[ -x "$bin" ] || cargo build --release --locked

# Enough descriptors for 10,000 connections on each side, plus the attackers.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((conns + 3000)) ] || {
  echo "soak: ulimit -n is $(ulimit -n); need $((conns + 3000)) (run as root or lower SOAK_CONNECTIONS)" >&2
  exit 1
}

dir=$(mktemp -d /tmp/certgate-soak.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
admin=$(free_port)
backend=$(free_port)

# --- PKI (openssl; P-256 keys keep handshakes cheap) ---
(
  cd "$dir"
  ossl() { openssl "$@" 2>/dev/null; }
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
    -days 30 -subj "/CN=Soak CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
    -subj "/CN=localhost"
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
  ossl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile server.ext -out server.crt
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr \
    -subj "/O=Contoso/OU=Soak/CN=soak"
  printf 'extendedKeyUsage=clientAuth\n' >client.ext
  ossl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile client.ext -out client.crt
)

write_config() { # $1 = reload counter: alternates two valid configurations
  local n=$1 anon=false
  [ $((n % 2)) -eq 0 ] || anon=true
  cat >"$dir/certgate.toml.new" <<EOF
[server]
listen = ["127.0.0.1:$port"]
admin_listen = "127.0.0.1:$admin"
max_connections = $((conns + 5000))
idle_timeout = "120s"
# A realistic slowloris guard, shorter than the idle wait: held keep-alive connections wait
# for their next request up to idle_timeout; only a head that has started must finish in 10s.
header_read_timeout = "10s"
max_header_bytes = 16384

[[site]]
name = "soak"
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "http://127.0.0.1:$backend"

[site.iis_client_certificate_mapping_authentication]
enabled = true

[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings]]
name = "soak"
description = "reload $n"
user_name = "EXAMPLE\\\\soak"
rules = [
  { certificate_field = "Subject", certificate_sub_field = "OU", match_criteria = "Soak" },
  { certificate_field = "Subject", certificate_sub_field = "O", match_criteria = "contoso", compare_case_sensitive = false },
]

[[site.location]]
path = "/public"
ssl_flags = "Ssl, SslNegotiateCert"
anonymous_authentication = $anon
EOF
  mv "$dir/certgate.toml.new" "$dir/certgate.toml"
}
write_config 0

"$bin" echo-backend --listen "127.0.0.1:$backend" >"$dir/backend.log" 2>&1 &
pids+=($!)
RUST_LOG="${SOAK_RUST_LOG:-info,certgate::access=warn}" "$bin" run -c "$dir/certgate.toml" >"$dir/certgate.log" 2>&1 &
cg=$!
pids+=("$cg")
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$admin/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$admin/healthz" >/dev/null

rss() { awk '/^VmRSS/ {print $2}' "/proc/$cg/status"; }
fds() { find "/proc/$cg/fd" -mindepth 1 -maxdepth 1 | wc -l; }
url="https://localhost:$port"
tls=(--cert "$dir/client.crt" --key "$dir/client.key" --ca "$dir/ca.crt")

# Warm up (first handshakes, backend pool), then the "before" numbers.
"$bin" bench "$url/warm" "${tls[@]}" --mode keepalive -c 4 -d 2 -q --json >/dev/null
sleep 1
rss_before=$(rss)
fds_before=$(fds)
echo "soak: certgate pid $cg, RSS ${rss_before} kB, ${fds_before} fds before; dir $dir"

# 1. Hold the connections open.
python3 benches/soak_hold.py --port "$port" --cert "$dir/client.crt" --key "$dir/client.key" \
  --ca "$dir/ca.crt" -n "$conns" --interval "$interval" --duration $((secs + 10)) \
  --ready-file "$dir/held" >"$dir/hold.json" 2>"$dir/hold.log" &
hold=$!
pids+=("$hold")
while [ ! -e "$dir/held" ]; do
  kill -0 "$hold" 2>/dev/null || { cat "$dir/hold.log" >&2; exit 1; }
  sleep 1
done
cat "$dir/hold.log"
rss_held=$(rss)
fds_held=$(fds)

# 2. Attackers for the whole window.
slowhttptest -H -c 1000 -r 200 -i 10 -x 24 -p 5 -l $((secs + 5)) -u "$url/slowloris" \
  -g -o "$dir/slowloris" >"$dir/slowloris.log" 2>&1 &
pids+=($!)
slowhttptest -H -c 200 -r 100 -i 1 -x 4000 -p 5 -l $((secs + 5)) -u "$url/oversized" \
  -g -o "$dir/oversized" >"$dir/oversized.log" 2>&1 &
pids+=($!)

# 3. The load, spanning the reloads.
"$bin" bench "$url/load" "${tls[@]}" --mode keepalive -c "$load_conc" -d "$secs" -q --json \
  >"$dir/load.json" 2>"$dir/load.log" &
load=$!
pids+=("$load")

# 4. A reload every second.
reloads=0
peak_rss=0
peak_fds=0
for i in $(seq 1 "$secs"); do
  sleep 1
  write_config "$i"
  kill -HUP "$cg"
  reloads=$((reloads + 1))
  r=$(rss); f=$(fds)
  [ "$r" -gt "$peak_rss" ] && peak_rss=$r
  [ "$f" -gt "$peak_fds" ] && peak_fds=$f
done

wait "$load" || true
wait "$hold" || true
sleep 8 # attackers end, idle and header timeouts fire
rss_after=$(rss)
fds_after=$(fds)
kill -0 "$cg" # still alive

applied=$(grep -c "configuration reloaded" "$dir/certgate.log" || true)
rejected=$(grep -c "reload rejected" "$dir/certgate.log" || true)
python3 - "$dir" "$rss_before" "$rss_held" "$peak_rss" "$rss_after" "$fds_before" "$fds_held" \
  "$peak_fds" "$fds_after" "$reloads" "$applied" "$rejected" <<'EOF'
import json, re, sys
d, rb, rh, rp, ra, fb, fh, fp, fa, reloads, applied, rejected = sys.argv[1:]
hold = json.load(open(f"{d}/hold.json"))
load = json.load(open(f"{d}/load.json"))
def slow(name):
    text = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{d}/{name}.log", errors="replace").read())
    conn = [int(x) for x in re.findall(r"connected:\s+(\d+)", text)]
    closed = re.findall(r"closed:\s+(\d+)", text)
    down = len(re.findall(r"service available:\s+NO", text))
    status = re.findall(r"Exit status:\s*(.*)", text)
    return (f"peak {max(conn, default=0)} connected, {closed[-1] if closed else '?'} closed,"
            f" service unavailable in {down} of {len(conn)} probes; "
            f"{status[-1].strip() if status else ''}")
load_lost = load["requests"] - load["ok"]
lost = hold["failed"] + load_lost
lat = load["latency"]
print("\n## soak result")
print(f"| held connections | {hold['connections']} open ({hold['connect_failed']} failed to open) |")
print(f"| held-connection requests | {hold['sent']} sent, {hold['ok']} ok, {hold['failed']} failed {hold['failures'] or ''} |")
print(f"| load (bench keepalive -c {load['concurrency']}) | {load['requests']} requests, {load['ok']} ok ({load['rate_per_s']:.0f}/s), errors {load['errors'] or 0} |")
print(f"| requests lost | {lost} |")
print(f"| reloads | {reloads} SIGHUPs, {applied} applied, {rejected} rejected |")
print(f"| p99 during reloads | load {lat['p99_us'] / 1000:.1f} ms (p50 {lat['p50_us'] / 1000:.1f}, max {lat['max_us'] / 1000:.1f}); held {hold['p99_ms']} ms (max {hold['max_ms']} ms) |")
print(f"| RSS (kB) | before {rb}, all held {rh}, peak {rp}, after {ra} |")
print(f"| open fds | before {fb}, all held {fh}, peak {fp}, after {fa} |")
print(f"| slowloris | {slow('slowloris')} |")
print(f"| oversized headers | {slow('oversized')} |")
ok = lost == 0 and hold["connect_failed"] == 0 and int(fa) <= int(fb) + 2
print("soak:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
EOF
