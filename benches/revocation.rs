//! Revocation hot paths, through the proxy's own code (`certgate::revocation`):
//!
//! 1. Loading a 500,000-serial CRL (about 13 MB, signed by a test CA with rcgen): parse, index
//!    and signature check ([`Crl::parse`] + [`Crl::verify`], what a fetch does off the async
//!    workers). Goal: under 1 s.
//! 2. Lookups on a 1,000- and a 500,000-entry CRL, hit and miss: must stay flat (O(1)).
//! 3. Replacing the 500k CRL in a cache slot ([`Slot::store`]) while reader threads look serials
//!    up: the worst reader latency during the swaps, against the same readers without swaps
//!    (goal: no pause; dropping the old CRL must not land on a reader).
//! 4. The per-handshake cost of the whole check ([`Revocation::check`]) with a warm cache: a
//!    certificate naming a CRL Distribution Point (1k and 500k CRLs, served once by a local
//!    HTTP listener) against one naming no source, which does everything but the lookup.
//!
//!   cargo bench --bench revocation              # all, 500k serials
//!   cargo bench --bench revocation -- 100000    # a smaller CRL

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use certgate::pki::{Authority, ClientSpec};
use certgate::revocation::cache::{CachedCrl, Origin, Slot, Store};
use certgate::revocation::chain::Link;
use certgate::revocation::crl::Crl;
use certgate::revocation::{Policy, Revocation, Verdict};
use rustls::pki_types::CertificateRevocationListDer;
use rustls::pki_types::pem::PemObject;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500_000);
    let ca = Authority::new("revocation bench CA").unwrap();
    let spki = Link::parse(&ca.der).unwrap().spki;
    let serials = |n: usize| -> Vec<u64> { (0..n as u64).map(|i| 0x0100_0000 + i * 7).collect() };

    let t = Instant::now();
    let big_pem = ca.crl(&serials(n), 7).unwrap();
    let big_der = CertificateRevocationListDer::from_pem_slice(big_pem.as_bytes())
        .unwrap()
        .to_vec();
    println!(
        "generated a {n}-serial CRL: {:.1} MB DER in {:.1} s (rcgen)",
        big_der.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let small_pem = ca.crl(&serials(1000), 7).unwrap();
    let small_der = CertificateRevocationListDer::from_pem_slice(small_pem.as_bytes())
        .unwrap()
        .to_vec();

    // 1. Load.
    let mut loads = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let crl = Crl::parse(&big_der).unwrap();
        let parsed = t.elapsed();
        crl.verify(&spki).unwrap();
        let total = t.elapsed();
        assert_eq!(crl.len(), n);
        loads.push((parsed, total));
        let t = Instant::now();
        drop(crl);
        println!(
            "load {n}: parse+index {:>7.1} ms, + signature {:>7.1} ms, total {:>7.1} ms (drop {:.1} ms)",
            ms(parsed),
            ms(total - parsed),
            ms(total),
            ms(t.elapsed())
        );
    }
    let mut totals: Vec<Duration> = loads.iter().map(|l| l.1).collect();
    totals.sort();
    println!(
        "load {n}: median {:.1} ms, min {:.1}, max {:.1} (goal: under 1000 ms)",
        ms(totals[totals.len() / 2]),
        ms(totals[0]),
        ms(totals[totals.len() - 1])
    );

    // 2. Lookups.
    let big = Arc::new(Crl::parse(&big_der).unwrap());
    let small = Arc::new(Crl::parse(&small_der).unwrap());
    let hit = 0x0100_0000u64 + 7 * 500;
    let miss = 0x0100_0000u64 + 7 * 500 + 1;
    for (name, crl) in [("1k", &small), ("500k", &big)] {
        for (what, serial) in [("hit", hit), ("miss", miss)] {
            let bytes = trimmed(serial);
            let ns = per_op_ns(2_000_000, || {
                crl.entry(std::hint::black_box(&bytes)).is_some()
            });
            println!("lookup {name:>4} {what:<4}: {ns:.1} ns");
        }
    }

    // 3. Swap under load.
    swap_under_load(&big_der, &big);

    // 4. The whole check per handshake, warm.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(check_cost(&ca, &small_der, &big_der));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The DER INTEGER contents of a positive serial, as certificates carry it.
fn trimmed(serial: u64) -> Vec<u8> {
    let bytes = serial.to_be_bytes();
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    let mut out = bytes[start..].to_vec();
    if out[0] & 0x80 != 0 {
        out.insert(0, 0);
    }
    out
}

fn per_op_ns(iterations: u32, mut op: impl FnMut() -> bool) -> f64 {
    let t = Instant::now();
    let mut hits = 0u32;
    for _ in 0..iterations {
        hits += u32::from(op());
    }
    std::hint::black_box(hits);
    t.elapsed().as_nanos() as f64 / f64::from(iterations)
}

/// Readers look up a serial through the slot in a loop, recording their worst latency, first
/// without swaps and then while the main thread replaces the CRL ten times.
fn swap_under_load(der: &[u8], first: &Arc<Crl>) {
    let cached = |crl: Arc<Crl>| {
        Arc::new(CachedCrl {
            crl,
            obtained: 0,
            origin: Origin::Fetched,
        })
    };
    for swaps in [false, true] {
        // Parsed beforehand; handed over, so the replaced CRL is dropped by whoever holds it
        // last: the writer, or a reader that was looking it up.
        let replacements: Vec<Arc<Crl>> = (0..if swaps { 10 } else { 0 })
            .map(|_| Arc::new(Crl::parse(der).unwrap()))
            .collect();
        let slot: Arc<Slot<CachedCrl>> = Arc::new(Slot::new());
        slot.store(cached(Arc::clone(first)));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (slot, stop) = (Arc::clone(&slot), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let serial = trimmed(0x0100_0000 + 7 * 1234);
                    let (mut worst, mut count, mut slow) = (Duration::ZERO, 0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let current = slot.current().unwrap();
                        assert!(current.crl.entry(&serial).is_some());
                        drop(current);
                        let took = t.elapsed();
                        worst = worst.max(took);
                        slow += u64::from(took > Duration::from_millis(1));
                        count += 1;
                    }
                    (worst, count, slow)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        if swaps {
            for crl in replacements {
                slot.store(cached(crl));
                std::thread::sleep(Duration::from_millis(100));
            }
        } else {
            std::thread::sleep(Duration::from_millis(1000));
        }
        stop.store(true, Ordering::Relaxed);
        let results: Vec<(Duration, u64, u64)> =
            readers.into_iter().map(|r| r.join().unwrap()).collect();
        let worst = results.iter().map(|r| r.0).max().unwrap();
        let lookups: u64 = results.iter().map(|r| r.1).sum();
        let slow: u64 = results.iter().map(|r| r.2).sum();
        println!(
            "readers {}: worst lookup {:.1} µs, {slow} over 1 ms, of {lookups} lookups in {:.1} s \
             (2 threads; on a busy machine the worst is preemption)",
            if swaps {
                "during 10 swaps of the 500k CRL"
            } else {
                "without swaps"
            },
            worst.as_secs_f64() * 1e6,
            t.elapsed().as_secs_f64()
        );
    }
}

/// Serves `body` to every HTTP request on a loopback port; returns the port.
async fn serve(body: Vec<u8>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = Arc::new(body);
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let body = Arc::clone(&body);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = tcp.write_all(head.as_bytes()).await;
                let _ = tcp.write_all(&body).await;
            });
        }
    });
    port
}

async fn check_cost(ca: &Authority, small: &[u8], big: &[u8]) {
    let small_port = serve(small.to_vec()).await;
    let big_port = serve(big.to_vec()).await;
    let limits = certgate::revocation::fetch::Limits {
        max_bytes: 64 * 1024 * 1024,
        ..Default::default()
    };
    let store = Arc::new(Store::new(limits, None, None));
    let anchors = vec![Link::parse(&ca.der).unwrap()];
    let policy = Policy {
        timeout: Duration::from_secs(30),
        ..Policy::default()
    };
    let revocation = Revocation::new(policy, anchors, Vec::new(), store);
    let cert = |name: &str, cdps: Vec<String>| {
        let mut spec = ClientSpec::new(name);
        spec.serial = Some(0x0200_0001);
        spec.crl_distribution_points = cdps;
        ca.client(&spec).unwrap().der
    };
    let cases = [
        ("no source", cert("none", Vec::new())),
        (
            "CDP, 1k CRL",
            cert(
                "small",
                vec![format!("http://127.0.0.1:{small_port}/ca.crl")],
            ),
        ),
        (
            "CDP, 500k CRL",
            cert("big", vec![format!("http://127.0.0.1:{big_port}/ca.crl")]),
        ),
    ];
    let mut base = None;
    for (name, der) in &cases {
        let chain = [der.clone()];
        // Warm: the first check fetches.
        let report = revocation.check(&chain).await;
        assert_eq!(report.verdict, Verdict::Good, "{}", report.summary());
        let mut rounds = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            for _ in 0..20_000 {
                std::hint::black_box(revocation.check(&chain).await);
            }
            rounds.push(t.elapsed().as_secs_f64() * 1e6 / 20_000.0);
        }
        rounds.sort_by(f64::total_cmp);
        let median = rounds[rounds.len() / 2];
        let extra = base.map_or(String::new(), |b: f64| format!(", +{:.1} µs", median - b));
        base.get_or_insert(median);
        println!(
            "check per handshake, {name:<14}: median {median:.1} µs (min {:.1}, max {:.1}){extra}",
            rounds[0],
            rounds[rounds.len() - 1]
        );
    }
}
