//! Configuration load with 1, 10k and 1M one-to-one mappings: wall time of
//! `certgate::config::Runtime::load` and the memory it adds. Run with
//! `cargo bench --bench load` (sizes and formats as arguments:
//! `cargo bench --bench load -- 1000000 csv`).
//!
//! Two formats per size: `csv`, the mappings in a mapping table (`one_to_one_mappings_file`,
//! written as PowerShell's `Export-Csv` writes, every field quoted) next to a small TOML file;
//! and `toml`, the same mappings as inline `[[...one_to_one_mappings]]` blocks, which the
//! `toml` crate reads (slowly: that is what the table is for).
//!
//! Each size runs in a fresh child process, so the memory numbers of one size are not disturbed
//! by the allocator state another left behind. For each size the child reports:
//! - `load`: wall time of `Runtime::load` (read the file, parse the TOML, build everything), the
//!   fastest and the median of several runs;
//! - `cpu`: CPU time (user + system, all threads) of the fastest run, from `/proc/self/stat`
//!   (10 ms resolution); on a shared machine it moves less than wall time;
//! - `drop`: wall time to drop the loaded runtime (what a reload pays to free the old one; a
//!   large one-to-one index is freed on a thread of its own, which the next run waits for so
//!   that runs do not overlap);
//! - `rss+`: resident memory the loaded runtime keeps (VmRSS after the first load minus before);
//! - `peak+`: the high-water mark during the first load minus the RSS before it (VmHWM, reset
//!   through `/proc/self/clear_refs` just before loading), which includes the file text and the
//!   parsed TOML that exist only while loading.
//!
//! `LOAD_BENCH_RUNS` overrides the number of runs per size (e.g. `1` under a profiler).
//!
//! The mapped certificates are real, distinct X.509 certificates that chain to the site's client
//! CA: one client key pair, one template certificate made with rcgen, then per entry the serial
//! number and the subject CN (`user0000042`) are rewritten in the to-be-signed part and the
//! result is signed again with the CA key (ECDSA P-256, aws-lc-rs), so every signature verifies.
//! Sharing the client key only makes the subject public key and key identifier repeat, which
//! does not matter to a loader that indexes by the hash of the whole DER. Generating a million
//! costs about ten seconds, so the files are cached in `target/load-bench/` (delete it to
//! regenerate).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use certgate::config::Runtime;
use certgate::tls::server::ResumptionKeys;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

/// The allocator the `certgate` binary uses (`src/main.rs`), so the load is measured as it runs
/// in the product: a million rows make two million small allocations, and freeing them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_SIZES: [usize; 3] = [1, 10_000, 1_000_000];
/// Template serial: 16 bytes, positive, distinctive enough to find once in the DER.
const SERIAL_TEMPLATE: [u8; 16] = [
    0x4c, 0xe7, 0x7a, 0x1e, 0x5e, 0x71, 0xa1, 0x00, 0xc3, 0x9d, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
];
const CN_TEMPLATE: &str = "user0000000";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        let n = args[pos + 1].parse().unwrap();
        child(n);
        return;
    }
    // `cargo bench` passes `--bench`; anything numeric is a size, `csv`/`toml` a format.
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = DEFAULT_SIZES.to_vec();
    }
    let mut formats: Vec<&str> = ["csv", "toml"]
        .into_iter()
        .filter(|f| args.iter().any(|a| a == f))
        .collect();
    if formats.is_empty() {
        formats = vec!["csv", "toml"];
    }
    let dir = bench_dir();
    println!(
        "config load with one-to-one mappings (files in {})",
        dir.display()
    );
    println!(
        "{:>9}  {:>6}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}  {:>8}  {:>8}  {:>7}",
        "entries",
        "format",
        "file MB",
        "load min",
        "load med",
        "cpu",
        "drop",
        "rss+ MB",
        "peak+ MB",
        "B/entry"
    );
    for n in sizes {
        for format in &formats {
            let (file, data) = config_file(&dir, n, format);
            let out = Command::new(std::env::current_exe().unwrap())
                .arg("--child")
                .arg(n.to_string())
                .env("LOAD_BENCH_FILE", &file)
                .env("LOAD_BENCH_DATA", &data)
                .env("LOAD_BENCH_FORMAT", format)
                .output()
                .unwrap();
            if !out.status.success() {
                panic!(
                    "child for {n} {format} failed:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
    }
}

/// Loads the file several times in this (fresh) process and prints one table row.
fn child(n: usize) {
    let file = PathBuf::from(std::env::var_os("LOAD_BENCH_FILE").unwrap());
    let data = PathBuf::from(std::env::var_os("LOAD_BENCH_DATA").unwrap());
    let format = std::env::var("LOAD_BENCH_FORMAT").unwrap();
    let file_mb = std::fs::metadata(&data).unwrap().len() as f64 / 1e6;
    let keys = ResumptionKeys::default();
    let runs = std::env::var("LOAD_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(match n {
            0..=10_000 => 20,
            10_001..=100_000 => 5,
            _ => 3,
        });

    // First run: memory.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_number("VmRSS");
    let (start, cpu_start) = (Instant::now(), cpu_ticks());
    let runtime = Runtime::load(&file, &keys).unwrap_or_else(|e| panic!("{e}"));
    let mut times = vec![(start.elapsed(), cpu_ticks() - cpu_start)];
    let after = status_number("VmRSS");
    let peak = status_number("VmHWM");
    assert_eq!(runtime.sites.len(), 1);
    let loaded = runtime.sites[0].root_scope().mapper.one_to_one.len();
    assert_eq!(loaded, n, "every mapping is indexed");
    let threads = status_number("Threads");
    let start = Instant::now();
    drop(runtime);
    let mut drops = vec![start.elapsed()];
    settle(threads);

    for _ in 1..runs {
        let (start, cpu_start) = (Instant::now(), cpu_ticks());
        let runtime = Runtime::load(&file, &keys).unwrap();
        times.push((start.elapsed(), cpu_ticks() - cpu_start));
        let start = Instant::now();
        drop(runtime);
        drops.push(start.elapsed());
        settle(threads);
    }
    times.sort();
    drops.sort();
    let added = after.saturating_sub(before) as f64 / 1024.0;
    let peak_added = peak.saturating_sub(before) as f64 / 1024.0;
    let ticks = 1.0 / 100.0; // USER_HZ
    println!(
        "{:>9}  {:>6}  {:>8.1}  {:>9}  {:>9}  {:>9}  {:>9}  {:>8.1}  {:>8.1}  {:>7.0}",
        n,
        format,
        file_mb,
        show(times[0].0),
        show(times[times.len() / 2].0),
        show(Duration::from_secs_f64(times[0].1 as f64 * ticks)),
        show(drops[drops.len() / 2]),
        added,
        peak_added,
        after.saturating_sub(before) as f64 * 1024.0 / n as f64,
    );
}

/// Waits until the process is back to `threads` threads: the thread freeing a dropped index
/// has finished, so its work is not counted in the next run.
fn settle(threads: u64) {
    while status_number("Threads") > threads {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// User plus system CPU time of this process so far, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn show(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// A numeric field of `/proc/self/status` (memory fields are in kB).
fn status_number(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn bench_dir() -> PathBuf {
    // benches run with the package root as the working directory; honour CARGO_TARGET_DIR.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("load-bench")
}

/// The config file with `n` mappings in `format` and the file holding the mappings (the same
/// file for `toml`), generated once (with their PKI) and cached.
fn config_file(dir: &Path, n: usize, format: &str) -> (PathBuf, PathBuf) {
    let toml = dir.join(format!("one_to_one_{n}.toml"));
    let table_toml = dir.join(format!("one_to_one_{n}_table.toml"));
    let csv = dir.join(format!("one_to_one_{n}.csv"));
    let wanted = match format {
        "csv" => (table_toml.clone(), csv.clone()),
        _ => (toml.clone(), toml.clone()),
    };
    if wanted.0.exists() && wanted.1.exists() {
        return wanted;
    }
    std::fs::create_dir_all(dir).unwrap();
    let pki = Pki::load_or_create(dir);
    let start = Instant::now();
    let certs = pki.mapping_certificates(n);
    let head = "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[[site]]\nname = \"Default Web Site\"\n\
         host_names = [\"localhost\"]\ncertificate = \"server.crt\"\nprivate_key = \"server.key\"\n\
         client_ca = [\"ca.crt\"]\nssl_flags = \"Ssl, SslNegotiateCert, SslRequireCert\"\n\
         anonymous_authentication = false\nbackend = \"http://127.0.0.1:9\"\n\n\
         [site.iis_client_certificate_mapping_authentication]\nenabled = true\n\
         one_to_one_certificate_mappings_enabled = true\n";
    let per_entry = certs.first().map_or(0, |c| c.len() * 4 / 3) + 120;
    if format == "csv" {
        write_atomically(
            &table_toml,
            &format!("{head}one_to_one_mappings_file = \"one_to_one_{n}.csv\"\n"),
        );
        let mut text = String::with_capacity(n * per_entry);
        text.push_str("\"userName\",\"certificate\",\"enabled\"\r\n");
        for (i, der) in certs.iter().enumerate() {
            write!(
                text,
                "\"EXAMPLE\\user{i:07}\",\"{}\",\"True\"\r\n",
                STANDARD.encode(der)
            )
            .unwrap();
        }
        write_atomically(&csv, &text);
    } else {
        let mut text = String::from(head);
        text.reserve(n * per_entry);
        for (i, der) in certs.iter().enumerate() {
            write!(
                text,
                "\n[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
                 user_name = \"EXAMPLE\\\\user{i:07}\"\ncertificate = \"{}\"\n",
                STANDARD.encode(der)
            )
            .unwrap();
        }
        write_atomically(&toml, &text);
    }
    eprintln!(
        "generated {n} mapping certificates in {:.1} s -> {}",
        start.elapsed().as_secs_f64(),
        wanted.1.display()
    );
    wanted
}

fn write_atomically(file: &Path, text: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// The CA (kept as PKCS#8 so later runs sign with the same key), the server certificate, and
/// the client certificate template.
struct Pki {
    ca_key: EcdsaKeyPair,
    template: Vec<u8>,
}

impl Pki {
    fn load_or_create(dir: &Path) -> Self {
        let key_file = dir.join("ca.key.der");
        let template_file = dir.join("template.der");
        if key_file.exists() && template_file.exists() && dir.join("server.key").exists() {
            let ca_key = EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_ASN1_SIGNING,
                &std::fs::read(&key_file).unwrap(),
            )
            .unwrap();
            let template = std::fs::read(&template_file).unwrap();
            return Self { ca_key, template };
        }
        let now = time::OffsetDateTime::now_utc();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "load bench CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = now - time::Duration::days(1);
        ca.not_after = now + time::Duration::days(3650);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_params(&ca, &ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.not_before = now - time::Duration::days(1);
        server.not_after = now + time::Duration::days(3650);
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();

        // A realistic enterprise client certificate: O, OU, CN, UPN and e-mail SANs.
        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Example Corp");
        dn.push(DnType::OrganizationalUnitName, "Staff");
        dn.push(DnType::CommonName, CN_TEMPLATE);
        client.distinguished_name = dn;
        client.subject_alt_names = vec![
            SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                "user@example.test".to_owned().into(),
            )),
            SanType::Rfc822Name("user@example.test".try_into().unwrap()),
        ];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.is_ca = IsCa::ExplicitNoCa;
        client.serial_number = Some(SerialNumber::from(SERIAL_TEMPLATE.to_vec()));
        client.not_before = now - time::Duration::days(1);
        client.not_after = now + time::Duration::days(3650);
        let template = client
            .signed_by(&client_key, &issuer)
            .unwrap()
            .der()
            .to_vec();

        std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
        std::fs::write(dir.join("server.crt"), server_cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
        std::fs::write(&template_file, &template).unwrap();
        std::fs::write(&key_file, ca_key.serialize_der()).unwrap();
        let ca_key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &ca_key.serialize_der())
                .unwrap();
        Self { ca_key, template }
    }

    /// `n` distinct certificates: the template with serial `i` and CN `user{i:07}`, re-signed.
    fn mapping_certificates(&self, n: usize) -> Vec<Vec<u8>> {
        let (tbs, alg) = split_certificate(&self.template);
        let serial_at = find_once(tbs, &SERIAL_TEMPLATE);
        let cn_at = find_once(tbs, CN_TEMPLATE.as_bytes());
        let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
        let chunk = n.div_ceil(threads).max(1);
        let mut out: Vec<Vec<u8>> = vec![Vec::new(); n];
        std::thread::scope(|s| {
            for (c, slots) in out.chunks_mut(chunk).enumerate() {
                let (tbs, alg, key) = (tbs, alg, &self.ca_key);
                s.spawn(move || {
                    let rng = SystemRandom::new();
                    let mut tbs = tbs.to_vec();
                    for (k, slot) in slots.iter_mut().enumerate() {
                        let i = c * chunk + k;
                        tbs[serial_at + 8..serial_at + 16]
                            .copy_from_slice(&(i as u64).to_be_bytes());
                        let cn = format!("user{i:07}");
                        tbs[cn_at..cn_at + CN_TEMPLATE.len()].copy_from_slice(cn.as_bytes());
                        let sig = key.sign(&rng, &tbs).unwrap();
                        let mut bits = vec![0u8];
                        bits.extend_from_slice(sig.as_ref());
                        let mut body = tbs.clone();
                        body.extend_from_slice(alg);
                        body.extend(der_tlv(0x03, &bits));
                        *slot = der_tlv(0x30, &body);
                    }
                });
            }
        });
        out
    }
}

/// The TBSCertificate and signatureAlgorithm TLVs of a certificate.
fn split_certificate(der: &[u8]) -> (&[u8], &[u8]) {
    let (_, inner) = read_tlv(der);
    let (tbs_len, _) = read_tlv(inner);
    let (tbs, rest) = inner.split_at(tbs_len);
    let (alg_len, _) = read_tlv(rest);
    (tbs, &rest[..alg_len])
}

/// Total length of the TLV at the start of `der`, and its contents.
fn read_tlv(der: &[u8]) -> (usize, &[u8]) {
    let first = der[1];
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        let len = der[2..2 + n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    (header + len, &der[header..header + len])
}

fn der_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

fn find_once(haystack: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "template field found exactly once");
    hits[0]
}
