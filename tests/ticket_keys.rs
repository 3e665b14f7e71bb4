//! `[server] session_ticket_keys` across real processes: two `certgate run` replicas sharing a
//! key file resume each other's sessions with the same identity (TLS 1.3 and 1.2), rotation by
//! appending a key, refusal across sites and across a `client_ca` change, and `check` refusing a
//! file others can read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use rustls::client::{ClientSessionMemoryCache, ClientSessionStore, Resumption};
use rustls::pki_types::ServerName;
use rustls::{HandshakeKind, NamedGroup, SupportedProtocolVersion};
use support::{Pki, send_on};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_certgate");

const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:{port}"]
{server_extra}

[[site]]
name = "Site A"
host_names = ["site-a.test"]
certificate = "server.crt"
private_key = "server.key"
client_ca = [{client_ca}]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "http://{backend}"

[site.iis_client_certificate_mapping_authentication]
enabled = true

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\alice"
certificate_file = "alice.crt"

[[site]]
name = "Site B"
host_names = ["site-b.test"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "http://{backend}"

[site.iis_client_certificate_mapping_authentication]
enabled = true

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\alice-on-b"
certificate_file = "alice.crt"
"#;

fn key_line() -> String {
    let mut key = [0u8; 80];
    aws_lc_rs::rand::fill(&mut key).unwrap();
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn write_keys(path: &Path, lines: &[&str]) {
    std::fs::write(path, format!("{}\n", lines.join("\n"))).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A shared directory: the PKI, the key file and a running echo backend.
struct Shared {
    dir: tempfile::TempDir,
    pki: Arc<Pki>,
    backend: SocketAddr,
    _stop: tokio_util::sync::CancellationToken,
}

impl Shared {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Arc::new(Pki::new());
        pki.write(dir.path());
        std::fs::write(dir.path().join("other-ca.crt"), &pki.other_ca.cert_pem).unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let backend = certgate::echo::spawn("127.0.0.1:0".parse().unwrap(), stop.clone())
            .await
            .unwrap();
        Self {
            dir,
            pki,
            backend,
            _stop: stop,
        }
    }

    fn keys(&self) -> PathBuf {
        self.dir.path().join("ticket.keys")
    }

    fn config(&self, port: u16, server_extra: &str, client_ca: &str) -> String {
        CONFIG
            .replace("{port}", &port.to_string())
            .replace("{server_extra}", server_extra)
            .replace("{client_ca}", client_ca)
            .replace("{backend}", &self.backend.to_string())
    }

    /// Starts `certgate run` with its own config file in the shared directory.
    async fn replica(&self, name: &str, server_extra: &str) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, self.config(port, server_extra, "\"ca.crt\"")).unwrap();
        let mut child = tokio::process::Command::new(BIN)
            .args(["--log-format", "json", "run", "-c"])
            .arg(&config)
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
        let mut replica = Replica {
            child,
            logs: rx,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            config,
            port,
        };
        replica.wait_for("listening (https)").await;
        replica
    }
}

struct Replica {
    child: tokio::process::Child,
    logs: mpsc::UnboundedReceiver<String>,
    addr: SocketAddr,
    config: PathBuf,
    port: u16,
}

impl Replica {
    async fn wait_for(&mut self, needle: &str) -> String {
        tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = self.logs.recv().await {
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("certgate exited before logging `{needle}`");
        })
        .await
        .unwrap_or_else(|_| panic!("no `{needle}` within 20s"))
    }

    async fn reload(&mut self) {
        let pid = self.child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        self.wait_for("configuration reloaded").await;
    }
}

/// A client session store that files every session under one name, so a ticket from one
/// replica (or site) is offered to whatever the next connection goes to.
#[derive(Debug)]
struct OneSlot(ClientSessionMemoryCache);

fn slot() -> ServerName<'static> {
    ServerName::try_from("slot").unwrap()
}

impl ClientSessionStore for OneSlot {
    fn set_kx_hint(&self, _: ServerName<'static>, group: NamedGroup) {
        self.0.set_kx_hint(slot(), group);
    }
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        self.0.kx_hint(&slot())
    }
    fn set_tls12_session(
        &self,
        _: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.0.set_tls12_session(slot(), value);
    }
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.0.tls12_session(&slot())
    }
    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        self.0.remove_tls12_session(&slot());
    }
    fn insert_tls13_ticket(
        &self,
        _: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.0.insert_tls13_ticket(slot(), value);
    }
    fn take_tls13_ticket(
        &self,
        _: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.0.take_tls13_ticket(&slot())
    }
}

/// alice's client with a session store of its own.
fn alice(pki: &Pki, version: &'static SupportedProtocolVersion) -> support::Client {
    let base = support::Client::with_versions(&pki.ca.cert_pem, Some(&pki.alice), &[version]);
    let mut config = (*base.config).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::store(Arc::new(OneSlot(ClientSessionMemoryCache::new(8))));
    support::Client {
        config: Arc::new(config),
    }
}

/// One request to `host` on `addr`: whether the handshake resumed, and the user the backend saw.
async fn visit(client: &support::Client, addr: SocketAddr, host: &str) -> (bool, String) {
    let tls = client.connect(addr, host).await.unwrap();
    let resumed = tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
    let resp = send_on(
        tls,
        Request::get("/")
            .header("host", host)
            .body(Bytes::new())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    (resumed, resp.remote_user().unwrap_or_default())
}

#[tokio::test]
async fn replicas_sharing_a_key_file_resume_each_others_sessions() {
    let shared = Shared::new().await;
    write_keys(&shared.keys(), &[&key_line()]);
    let with_keys = "session_ticket_keys = \"ticket.keys\"";
    let a = shared.replica("a", with_keys).await;
    let b = shared.replica("b", with_keys).await;
    let alone = shared.replica("alone", "").await;

    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let client = alice(&shared.pki, version);
        assert_eq!(
            visit(&client, a.addr, "site-a.test").await,
            (false, "EXAMPLE\\alice".into())
        );
        assert_eq!(
            visit(&client, b.addr, "site-a.test").await,
            (true, "EXAMPLE\\alice".into()),
            "{version:?}: a session from replica A resumes on replica B"
        );

        // Another site of the same replicas never honours it: a full handshake, its own user.
        let client = alice(&shared.pki, version);
        visit(&client, a.addr, "site-a.test").await;
        assert_eq!(
            visit(&client, b.addr, "site-b.test").await,
            (false, "EXAMPLE\\alice-on-b".into()),
            "{version:?}"
        );

        // Without the file, tickets are per process: a full handshake, never an error.
        let client = alice(&shared.pki, version);
        visit(&client, a.addr, "site-a.test").await;
        assert_eq!(
            visit(&client, alone.addr, "site-a.test").await,
            (false, "EXAMPLE\\alice".into()),
            "{version:?}"
        );
    }
}

/// The TLS 1.3 ticket is not sent alone after the client's Finished: it leaves with the first
/// response (one write and one segment fewer per connection), and the session still resumes.
#[tokio::test]
async fn the_tls13_ticket_rides_with_the_first_response() {
    let shared = Shared::new().await;
    let a = shared.replica("a", "").await;
    let client = alice(&shared.pki, &rustls::version::TLS13);
    let tls = client.connect(a.addr, "site-a.test").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut probe = [0u8; 1];
    let early = tls.get_ref().0.try_read(&mut probe);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "nothing is sent between the handshake and the response: {early:?}"
    );
    let resp = send_on(
        tls,
        Request::get("/")
            .header("host", "site-a.test")
            .body(Bytes::new())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        visit(&client, a.addr, "site-a.test").await,
        (true, "EXAMPLE\\alice".into()),
        "the ticket that came with the response resumes"
    );
}

#[tokio::test]
async fn rotation_appends_a_key_and_old_tickets_keep_resuming() {
    let shared = Shared::new().await;
    let (k1, k2) = (key_line(), key_line());
    write_keys(&shared.keys(), &[&k1]);
    let mut a = shared
        .replica("a", "session_ticket_keys = \"ticket.keys\"")
        .await;
    // B watches its files: the key file is one of them.
    let mut b = shared
        .replica(
            "b",
            "session_ticket_keys = \"ticket.keys\"\nwatch = true\nwatch_interval = \"100ms\"",
        )
        .await;
    let v13 = &rustls::version::TLS13;
    let old = alice(&shared.pki, v13);
    visit(&old, a.addr, "site-a.test").await;

    // Append k2: B picks it up by itself, A has not reloaded yet.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write_keys(&shared.keys(), &[&k1, &k2]);
    b.wait_for("configuration reloaded").await;
    let new = alice(&shared.pki, v13);
    visit(&new, b.addr, "site-a.test").await;
    let pending = alice(&shared.pki, v13);
    visit(&pending, b.addr, "site-a.test").await;
    // A replica that has not rotated answers a ticket sealed with the new key: full handshake.
    assert_eq!(
        visit(&pending, a.addr, "site-a.test").await,
        (false, "EXAMPLE\\alice".into())
    );
    a.reload().await;
    assert_eq!(
        visit(&new, a.addr, "site-a.test").await,
        (true, "EXAMPLE\\alice".into())
    );
    // A ticket sealed with the old key still resumes on the rotated replica.
    assert_eq!(
        visit(&old, b.addr, "site-a.test").await,
        (true, "EXAMPLE\\alice".into())
    );

    // Dropping k1 retires tickets sealed with it.
    let retired = alice(&shared.pki, v13);
    write_keys(&shared.keys(), &[&k1]);
    a.reload().await;
    visit(&retired, a.addr, "site-a.test").await;
    write_keys(&shared.keys(), &[&k2]);
    a.reload().await;
    assert_eq!(
        visit(&retired, a.addr, "site-a.test").await,
        (false, "EXAMPLE\\alice".into())
    );
}

#[tokio::test]
async fn a_client_ca_change_invalidates_tickets() {
    let shared = Shared::new().await;
    write_keys(&shared.keys(), &[&key_line()]);
    let extra = "session_ticket_keys = \"ticket.keys\"";
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut a = shared.replica("a", extra).await;
        let before = alice(&shared.pki, version);
        visit(&before, a.addr, "site-a.test").await;
        let control = alice(&shared.pki, version);
        visit(&control, a.addr, "site-a.test").await;
        assert!(
            visit(&control, a.addr, "site-a.test").await.0,
            "{version:?}"
        );

        // Another trust anchor for the site: alice is still trusted, her old session is not.
        std::fs::write(
            &a.config,
            shared.config(a.port, extra, "\"ca.crt\", \"other-ca.crt\""),
        )
        .unwrap();
        a.reload().await;
        assert_eq!(
            visit(&before, a.addr, "site-a.test").await,
            (false, "EXAMPLE\\alice".into()),
            "{version:?}"
        );
        // Sessions from after the change resume as usual.
        assert!(visit(&before, a.addr, "site-a.test").await.0, "{version:?}");
    }
}

#[test]
fn check_refuses_a_key_file_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    Pki::new().write(dir.path());
    let config = dir.path().join("certgate.toml");
    std::fs::write(
        &config,
        CONFIG
            .replace("{port}", "0")
            .replace("{server_extra}", "session_ticket_keys = \"ticket.keys\"")
            .replace("{client_ca}", "\"ca.crt\"")
            .replace("{backend}", "127.0.0.1:9"),
    )
    .unwrap();
    let keys = dir.path().join("ticket.keys");
    let line = key_line();
    write_keys(&keys, &[&line]);
    let check = || {
        std::process::Command::new(BIN)
            .args(["check", "-c"])
            .arg(&config)
            .output()
            .unwrap()
    };
    assert!(
        check().status.success(),
        "{}",
        String::from_utf8_lossy(&check().stderr)
    );
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = check();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: server.session_ticket_keys: {} is accessible by group or others (mode 0644)",
            config.display(),
            keys.display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&line[..20])
            && !String::from_utf8_lossy(&out.stdout).contains(&line[..20])
    );

    // A malformed key names the line, not the content.
    std::fs::write(&keys, format!("{line}\n{}\n", &line[..40])).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = check();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 2 holds 30 bytes"), "{stderr}");
    assert!(!stderr.contains(&line[..20]), "{stderr}");
}
