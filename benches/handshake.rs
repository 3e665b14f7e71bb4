//! The handshake floor: full TLS 1.3 mTLS handshakes between an in-memory rustls client and
//! server, no sockets, no tokio, no HTTP, with the same keys and crypto provider (aws-lc-rs)
//! as the proxy. `benches/compare.sh` runs it in the same session as the servers it measures,
//! so "within N times the floor" compares like with like.
//!
//! Two server variants, each timed on the server side only (the client's work is excluded):
//!   - `rustls`: stock `WebPkiClientVerifier` checking the chain inside the handshake;
//!   - `certgate`: the proxy's own `server_config` (its verifier, one TLS 1.3 ticket, ALPN) plus
//!     the post-handshake chain verdict and certificate parsing the proxy does per connection.
//!
//!   cargo bench --bench handshake                      # generated P-256 PKI
//!   cargo bench --bench handshake -- DIR [ROUNDS N]    # DIR/{ca,server,client}.{crt,key}
//!
//! Prints per round the server-side µs of the median handshake (wall time of the server's calls
//! on one thread; the median drops the handshakes a busy machine preempted, which the mean
//! would count at milliseconds each) and a machine-readable `floor` line with the median over
//! rounds and the spread.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certgate::tls::client_auth::{ClientAuth, ErrorReporting};
use certgate::tls::server::{ResumptionKeys, server_config};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

/// Work the server does once the handshake is complete.
type After<'a> = &'a dyn Fn(&ServerConnection);

struct Pki {
    ca: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: PrivateKeyDer<'static>,
}

impl Pki {
    fn from_dir(dir: &Path) -> Self {
        let cert = |name: &str| {
            CertificateDer::pem_file_iter(dir.join(name))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        };
        let key = |name: &str| PrivateKeyDer::from_pem_file(dir.join(name)).unwrap();
        Self {
            ca: cert("ca.crt").remove(0),
            server_chain: cert("server.crt"),
            server_key: key("server.key"),
            client_chain: cert("client.crt"),
            client_key: key("client.key"),
        }
    }

    fn generated() -> Self {
        let ca = certgate::pki::Authority::new("floor CA").unwrap();
        let server = ca.server(&["localhost"]).unwrap();
        let client = ca
            .client(&certgate::pki::ClientSpec::new("client"))
            .unwrap();
        let key = |pem: &str| PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
        Self {
            ca: ca.der.clone(),
            server_chain: vec![server.der.clone()],
            server_key: key(&server.key_pem),
            client_chain: vec![client.der.clone()],
            client_key: key(&client.key_pem),
        }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        roots
    }
}

/// What compare.sh's load generators negotiate: TLS 1.3, X25519, no resumption.
fn client_config(pki: &Pki) -> Arc<ClientConfig> {
    let base = certgate::tls::provider();
    let provider = CryptoProvider {
        kx_groups: vec![rustls::crypto::aws_lc_rs::kx_group::X25519],
        ..(*base).clone()
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_client_auth_cert(pki.client_chain.clone(), pki.client_key.clone_key())
        .unwrap();
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The proxy's provider with its default cipher-suite order, so both variants and the proxy
/// negotiate the same suite.
fn server_provider() -> Arc<CryptoProvider> {
    certgate::tls::cipher_suites::server_provider(certgate::tls::cipher_suites::default_order())
}

fn stock_server(pki: &Pki) -> Arc<ServerConfig> {
    let provider = server_provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(pki.roots()), Arc::clone(&provider))
            .build()
            .unwrap();
    let config = certgate::tls::cipher_suites::ordered_config(
        provider,
        verifier,
        pki.server_chain.clone(),
        pki.server_key.clone_key(),
    )
    .unwrap();
    Arc::new(config)
}

fn certgate_server(pki: &Pki) -> (Arc<ServerConfig>, Arc<ClientAuth>) {
    let auth = Arc::new(ClientAuth::new(pki.roots(), None, ErrorReporting::Http, true).unwrap());
    let keys = ResumptionKeys::default();
    let resumption = keys
        .for_site("bench", auth.trust_fingerprint(), None)
        .unwrap();
    let config = server_config(
        server_provider(),
        pki.server_chain.clone(),
        pki.server_key.clone_key(),
        Arc::clone(&auth),
        resumption,
    )
    .unwrap();
    (Arc::new(config), auth)
}

/// Moves every pending TLS byte from `from` to `to`; returns the time `to` spent if it is the
/// server (`server_side`), else zero.
fn pump_to_server(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
    buf: &mut Vec<u8>,
) -> Duration {
    buf.clear();
    while client.wants_write() {
        client.write_tls(buf).unwrap();
    }
    if buf.is_empty() {
        return Duration::ZERO;
    }
    let start = Instant::now();
    let mut cursor = Cursor::new(&buf[..]);
    while (cursor.position() as usize) < buf.len() {
        server.read_tls(&mut cursor).unwrap();
        server.process_new_packets().unwrap();
    }
    start.elapsed()
}

fn pump_to_client(
    server: &mut ServerConnection,
    client: &mut ClientConnection,
    buf: &mut Vec<u8>,
) -> Duration {
    buf.clear();
    let start = Instant::now();
    while server.wants_write() {
        server.write_tls(buf).unwrap();
    }
    let spent = start.elapsed();
    let mut cursor = Cursor::new(&buf[..]);
    while (cursor.position() as usize) < buf.len() {
        client.read_tls(&mut cursor).unwrap();
        client.process_new_packets().unwrap();
    }
    spent
}

/// One full handshake; returns the server's share of the time.
fn handshake(
    client_config: &Arc<ClientConfig>,
    server_config: &Arc<ServerConfig>,
    after: After<'_>,
    buf: &mut Vec<u8>,
) -> Duration {
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = ClientConnection::new(Arc::clone(client_config), name).unwrap();
    let start = Instant::now();
    let mut server = ServerConnection::new(Arc::clone(server_config)).unwrap();
    let mut spent = start.elapsed();
    while client.is_handshaking() || server.is_handshaking() || server.wants_write() {
        spent += pump_to_server(&mut client, &mut server, buf);
        spent += pump_to_client(&mut server, &mut client, buf);
    }
    let start = Instant::now();
    after(&server);
    spent + start.elapsed()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let pki = match args.first().map(String::as_str) {
        Some(dir) if !dir.is_empty() && dir != "-" => Pki::from_dir(Path::new(dir)),
        _ => Pki::generated(),
    };
    let rounds: usize = args.get(1).map_or(5, |s| s.parse().unwrap());
    let per_round: u32 = args.get(2).map_or(2000, |s| s.parse().unwrap());
    let client = client_config(&pki);
    let stock = stock_server(&pki);
    let (ours, auth) = certgate_server(&pki);
    let classify = |conn: &ServerConnection| {
        let verdict = auth.classify_handshake(conn.peer_certificates(), true);
        assert!(matches!(
            verdict,
            certgate::tls::client_auth::ClientCert::Valid(_)
        ));
    };
    let nothing = |conn: &ServerConnection| assert!(conn.peer_certificates().is_some());
    let mut buf = Vec::with_capacity(8192);
    for _ in 0..200 {
        handshake(&client, &stock, &nothing, &mut buf);
        handshake(&client, &ours, &classify, &mut buf);
    }
    let mut results: Vec<(&str, Vec<f64>)> = vec![("rustls", Vec::new()), ("certgate", Vec::new())];
    for round in 0..rounds {
        for (name, samples) in &mut results {
            let (config, after): (&Arc<ServerConfig>, After<'_>) = if *name == "rustls" {
                (&stock, &nothing)
            } else {
                (&ours, &classify)
            };
            // The median handshake, not the mean: on a shared machine a handshake that was
            // preempted costs milliseconds of wall time, and the median ignores those.
            let mut times: Vec<Duration> = (0..per_round)
                .map(|_| handshake(&client, config, after, &mut buf))
                .collect();
            times.sort();
            let us = times[times.len() / 2].as_secs_f64() * 1e6;
            samples.push(us);
            println!("round {round} {name:<9} server {us:7.1} µs per full mTLS handshake");
        }
    }
    for (name, mut samples) in results {
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        println!(
            "floor {name} median_us={median:.1} min_us={:.1} max_us={:.1} rounds={rounds} handshakes_per_round={per_round}",
            samples[0],
            samples[samples.len() - 1]
        );
    }
}
