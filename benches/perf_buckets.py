#!/usr/bin/env python3
"""Where certgate's CPU goes per full handshake, one column per load generator.

Called by `benches/compare.sh -p` with groups of five arguments per generator:
    NAME  PERF_REPORT.txt  PERF_STAT.csv  GENERATOR.json  SERVER_CPU_SECONDS
PERF_REPORT is `perf report --no-children --sort dso,sym --stdio -g none` of cpu-clock samples
of the proxy process (kernel included); PERF_STAT is `perf stat -x,` over the same run. Each
bucket's share of the samples is multiplied by the process's CPU time per completed handshake,
so the columns are µs per handshake and differences between generators read directly.
"""

import json
import re
import sys

# Buckets, first match wins; the symbol is matched case-sensitively. Kernel symbols are split by
# what the kernel was doing for the proxy.
KERNEL = [
    ("kernel: scheduling, wake-ups, idle entry/exit", r"schedule|switch|wake|ttwu|enqueue|dequeue|"
     r"pick_next|update_curr|update_load|psi_|rcu|hrtimer|tick_|cpuidle|select_task|set_next|"
     r"put_prev|native_sched|raw_spin|_raw_|finish_task|idle|nohz|sched_clock|timerqueue|irq"),
    ("kernel: page faults, mmap, madvise", r"page|fault|pte|pmd|mm_|vma|lru|folio|zap|madvise|"
     r"unmap|clear_|memcg|mmap|mprotect"),
    ("kernel: epoll", r"ep_|epoll"),
    ("kernel: TCP/IP, sockets, loopback", r"tcp|ip_|ip6|inet|sock|skb|net|dev_|loopback|nf_|sk_|"
     r"__sys_|lock_sock|release_sock|dst_|fib_|raw_v|udp|sendmsg|recvmsg|accept|xmit"),
    ("kernel: syscall entry, copies, other", r"."),
]
USER = [
    ("crypto (aws-lc: ECDSA, X25519, SHA, AES-GCM, bignum)", lambda d, s: re.search(
        r"aws_lc|ecp_nistz256|p256|P256|sha256|sha512|SHA|aes|gcm|GCM|x25519|X25519|curve25519|"
        r"bn_|BN_|ec_|EC_|fiat|ecdsa|ECDSA|hmac|HMAC|hkdf|HKDF|RAND|rand_|CRYPTO", s)),
    ("certificate checks (webpki, x509 parsing, identity)", lambda d, s: re.search(
        r"webpki|x509_parser|der_parser|asn1_rs|certgate::identity|client_auth|pki_types|der::", s)),
    ("TLS state machine and records (rustls)", lambda d, s: "rustls" in s),
    ("HTTP (hyper, http, httparse)", lambda d, s: re.search(r"hyper|httparse|http::|h2::", s)),
    ("forwarding and policy (certgate::proxy, server)", lambda d, s: re.search(r"certgate::", s)),
    ("async runtime (tokio, mio)", lambda d, s: re.search(r"tokio|mio::", s)),
    ("memory (allocator, memcpy)", lambda d, s: re.search(
        r"mi_|mimalloc|malloc|free|memcpy|memmove|memset|alloc::", s)),
    ("libc and other user space", lambda d, s: True),
]


def bucket(dso, sym):
    if dso.startswith("[kernel"):
        for name, pattern in KERNEL:
            if re.search(pattern, sym):
                return name
    for name, test in USER:
        if test(dso, sym):
            return name
    return "other"


def read_report(path):
    totals, symbols = {}, []
    for line in open(path):
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()
        name = bucket(dso, sym)
        totals[name] = totals.get(name, 0.0) + pct
        symbols.append((pct, dso, sym))
    return totals, symbols


def read_stat(path):
    counts = {}
    try:
        for line in open(path):
            parts = line.strip().split(",")
            if len(parts) >= 3 and parts[0] and parts[0][0].isdigit():
                counts[parts[2]] = float(parts[0])
    except OSError:
        pass
    return counts


def main(args):
    if not args or len(args) % 5:
        sys.exit("usage: perf_buckets.py (NAME REPORT STAT JSON CPU_SECONDS)...")
    runs = []
    for i in range(0, len(args), 5):
        name, report, stat, result, cpu_s = args[i:i + 5]
        ok = max(json.load(open(result))["ok"], 1)
        totals, symbols = read_report(report)
        rate = json.load(open(result))["rate_per_s"]
        runs.append((name, ok, float(cpu_s) * 1e6 / ok, totals, symbols, read_stat(stat), rate))

    order = [n for n, _ in KERNEL] + [n for n, _ in USER] + ["other"]
    width = max(len(n) for n in order)
    print("certgate CPU per full handshake by generator (perf cpu-clock samples x CPU time per handshake):")
    print(f"  {'':<{width}} " + " ".join(f"{r[0]:>14}" for r in runs))
    print(f"  {'handshakes in the profiled run':<{width}} " + " ".join(f"{r[1]:>14}" for r in runs))
    print(f"  {'handshakes per second':<{width}} " + " ".join(f"{r[6]:>14.0f}" for r in runs))
    for name in order:
        if not any(name in r[3] for r in runs):
            continue
        print(f"  {name:<{width}} " + " ".join(
            f"{r[3].get(name, 0.0) * r[2] / 100:>8.0f} µs {r[3].get(name, 0.0):>2.0f}%" for r in runs))
    print(f"  {'total (process CPU time / handshakes)':<{width}} " + " ".join(f"{r[2]:>11.0f} µs" for r in runs))
    for event, label in (("context-switches", "context switches per handshake"),
                         ("raw_syscalls:sys_enter", "system calls per handshake"),
                         ("syscalls:sys_enter_epoll_wait", "epoll_wait calls per handshake"),
                         ("page-faults", "page faults per handshake")):
        if any(event in r[5] for r in runs):
            print(f"  {label:<{width}} " + " ".join(
                f"{r[5][event] / r[1]:>14.1f}" if event in r[5] else f"{'?':>14}" for r in runs))
    for name, ok, per, totals, symbols, _, _ in runs:
        top = sorted(symbols, reverse=True)[:8]
        print(f"  top symbols under {name}: " + "; ".join(
            f"{s[:40]} {p * per / 100:.0f} µs" for p, d, s in top))


if __name__ == "__main__":
    main(sys.argv[1:])
