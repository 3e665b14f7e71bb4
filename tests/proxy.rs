//! End-to-end behaviour of the proxy on real sockets: IIS statuses, identity headers, header
//! spoofing, SNI/Host binding, path normalisation, HTTP/2, streaming and WebSocket.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bytes::Bytes;
use certgate::identity::CertFacts;
use http::{Request, Version};
use support::{BASIC, Env, raw_http1};

fn get(path: &str) -> Request<Bytes> {
    Request::get(path)
        .header("host", "localhost")
        .body(Bytes::new())
        .unwrap()
}

#[tokio::test]
async fn mapped_certificate_reaches_backend_with_identity_headers() {
    let env = Env::start(BASIC).await;
    let alice = env.client(Some(&env.pki.alice)).with_alpn(&[b"http/1.1"]);
    let resp = alice.get(env.addr(), "/hello?x=1").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let echo = resp.echo();
    assert_eq!(echo["path"], "/hello");
    assert_eq!(echo["query"], "x=1");
    let facts = CertFacts::parse(&env.pki.alice.der).unwrap();
    let h = &echo["headers"];
    assert_eq!(h["x-remote-user"], "EXAMPLE\\alice");
    assert_eq!(
        h["x-client-cert-subject"],
        "CN=alice, OU=Engineering, O=Contoso"
    );
    assert_eq!(
        h["x-client-cert-issuer"],
        "O=certgate test PKI, CN=Example Test CA"
    );
    assert_eq!(h["x-client-cert-serial"], facts.serial_hex());
    assert_eq!(h["x-client-cert-thumbprint"], facts.thumbprint());
    assert_eq!(facts.thumbprint().len(), 40);
    assert_eq!(h["x-arr-clientcert"], facts.base64_der());
    assert_eq!(h["client-cert"], format!(":{}:", facts.base64_der()));
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["host"], "localhost");
}

#[tokio::test]
async fn http2_clients_are_served_and_forwarded_as_http1() {
    let env = Env::start(BASIC).await;
    let alice = env.client(Some(&env.pki.alice));
    let resp = alice
        .send(env.addr(), "localhost", get("/h2"))
        .await
        .unwrap();
    assert_eq!(resp.version, Version::HTTP_2);
    assert_eq!(resp.status, 200);
    let echo = resp.echo();
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["headers"]["x-remote-user"], "EXAMPLE\\alice");
    // HTTP/2 carries the host in :authority; the backend still gets a Host header.
    assert_eq!(echo["headers"]["host"], "localhost");
}

#[tokio::test]
async fn tls12_clients_work() {
    let env = Env::start(BASIC).await;
    let client = support::Client::with_versions(
        &env.pki.ca.cert_pem,
        Some(&env.pki.alice),
        &[&rustls::version::TLS12],
    );
    let resp = client.get(env.addr(), "/").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.echo()["headers"]["x-remote-user"], "EXAMPLE\\alice");
}

/// Each certificate problem is an IIS page, not a TLS failure, and never reaches the backend.
#[tokio::test]
async fn certificate_problems_answer_iis_substatus() {
    let env = Env::start(BASIC).await;
    let pki = &env.pki;
    let cases = [
        (None, 403, "403.7", "Client certificate required"),
        (Some(&pki.untrusted), 403, "403.16", "untrusted or invalid"),
        (
            Some(&pki.server_auth_only),
            403,
            "403.16",
            "untrusted or invalid",
        ),
        (
            Some(&pki.expired),
            403,
            "403.17",
            "expired or is not yet valid",
        ),
        (
            Some(&pki.not_yet_valid),
            403,
            "403.17",
            "expired or is not yet valid",
        ),
        (Some(&pki.revoked), 403, "403.13", "revoked"),
        (
            Some(&pki.bob),
            401,
            "401.2",
            "Logon failed due to server configuration",
        ),
    ];
    for (identity, status, code, reason) in cases {
        let resp = env.client(identity).get(env.addr(), "/secure").await;
        let body = resp.text();
        assert_eq!(resp.status, status, "{code}: {body}");
        assert!(body.contains(code), "{code} missing from: {body}");
        assert!(body.contains(reason), "{reason} missing from: {body}");
        assert!(!body.contains("\"headers\""), "reached the backend: {body}");
    }
}

#[tokio::test]
async fn anonymous_location_needs_no_certificate_and_gets_no_identity() {
    let env = Env::start(BASIC).await;
    let resp = env.client(None).get(env.addr(), "/public/page").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let echo = resp.echo();
    assert!(echo["headers"].get("x-remote-user").is_none());
    assert!(echo["headers"].get("x-client-cert-subject").is_none());

    // Ssl alone ignores client certificates, even a valid mapped one.
    let resp = env
        .client(Some(&env.pki.alice))
        .get(env.addr(), "/public/page")
        .await;
    assert_eq!(resp.status, 200);
    assert!(resp.echo()["headers"].get("x-remote-user").is_none());
}

#[tokio::test]
async fn spoofed_identity_headers_are_stripped() {
    let env = Env::start(BASIC).await;
    let forged = [
        "X-Remote-User",
        "x_remote_user",
        "X-REMOTE_USER",
        "X-Client-Cert-Subject",
        "x_client_cert_thumbprint",
        "X-ARR-ClientCert",
        "Client-Cert",
        "client_cert",
    ];
    let build = |path: &str| {
        let mut b = Request::get(path).header("host", "localhost");
        for name in forged {
            b = b.header(name, "CN=admin");
        }
        b.body(Bytes::new()).unwrap()
    };
    for alpn in [&b"http/1.1"[..], &b"h2"[..]] {
        // Authenticated: only certgate's values arrive, once each.
        let alice = env.client(Some(&env.pki.alice)).with_alpn(&[alpn]);
        let resp = alice
            .send(env.addr(), "localhost", build("/secure"))
            .await
            .unwrap();
        assert_eq!(resp.status, 200);
        let h = resp.echo()["headers"].clone();
        assert_eq!(h["x-remote-user"], "EXAMPLE\\alice");
        assert_eq!(
            h["x-client-cert-subject"],
            "CN=alice, OU=Engineering, O=Contoso"
        );
        for name in [
            "x_remote_user",
            "x-remote_user",
            "x_client_cert_thumbprint",
            "client_cert",
        ] {
            assert!(h.get(name).is_none(), "{name} leaked: {h}");
        }
        assert!(
            !h.to_string().contains("CN=admin"),
            "forged value leaked: {h}"
        );

        // Anonymous: nothing identity-like arrives at all.
        let anon = env.client(None).with_alpn(&[alpn]);
        let resp = anon
            .send(env.addr(), "localhost", build("/public/x"))
            .await
            .unwrap();
        assert_eq!(resp.status, 200);
        let h = resp.echo()["headers"].clone();
        assert!(
            !h.to_string().contains("CN=admin"),
            "forged value leaked: {h}"
        );
    }
}

#[tokio::test]
async fn forged_forwarding_headers_are_replaced() {
    let env = Env::start(BASIC).await;
    let req = Request::get("/public/x")
        .header("host", "localhost")
        .header("x-forwarded-for", "10.9.9.9")
        .header("forwarded", "for=10.9.9.9")
        .body(Bytes::new())
        .unwrap();
    let resp = env
        .client(None)
        .send(env.addr(), "localhost", req)
        .await
        .unwrap();
    let h = resp.echo()["headers"].clone();
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert!(h.get("forwarded").is_none());
}

const TWO_SITES: &str = r#"
[server]
listen = ["127.0.0.1:0"]

[[site]]
name = "Site A"
host_names = ["site-a.test", "localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
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
ssl_flags = "Ssl"
anonymous_authentication = true
backend = "http://{backend}"
"#;

#[tokio::test]
async fn host_must_belong_to_the_sni_site() {
    let env = Env::start(TWO_SITES).await;
    let anon = env.client(None).with_alpn(&[b"http/1.1"]);
    // SNI of the anonymous site B, Host of the protected site A: must not be served.
    let req = Request::get("/")
        .header("host", "site-a.test")
        .body(Bytes::new())
        .unwrap();
    let resp = anon.send(env.addr(), "site-b.test", req).await.unwrap();
    assert_eq!(resp.status, 421, "{}", resp.text());
    // Same over HTTP/2 (:authority).
    let anon_h2 = env.client(None);
    let req = Request::get("https://site-a.test/")
        .body(Bytes::new())
        .unwrap();
    let resp = anon_h2.send(env.addr(), "site-b.test", req).await.unwrap();
    assert_eq!(resp.version, Version::HTTP_2);
    assert_eq!(resp.status, 421);
    // Host with a port and different case still matches its own site.
    let req = Request::get("/")
        .header("host", "SITE-B.test:443")
        .body(Bytes::new())
        .unwrap();
    let resp = anon.send(env.addr(), "site-b.test", req).await.unwrap();
    assert_eq!(resp.status, 200);
    // A request without any Host is refused.
    let raw = raw_http1(&anon, env.addr(), "site-b.test", "GET / HTTP/1.0\r\n\r\n").await;
    assert!(
        raw.starts_with("HTTP/1.0 400") || raw.starts_with("HTTP/1.1 400"),
        "{raw}"
    );
}

#[tokio::test]
async fn unknown_sni_is_refused_in_the_handshake() {
    let env = Env::start(TWO_SITES).await;
    let anon = env.client(None);
    // The server certificate does not even need to match: no site serves this name.
    let err = anon.connect(env.addr(), "other.test").await;
    assert!(err.is_err());
}

/// Builds a client whose session store hands any stored session to every server name, so a
/// ticket issued by one site is offered to another.
fn promiscuous_resumption(client: &support::Client) -> support::Client {
    #[derive(Debug)]
    struct AnyName(Arc<dyn rustls::client::ClientSessionStore>);
    use rustls::client::ClientSessionStore;
    use rustls::pki_types::ServerName;
    use std::sync::Arc;
    impl ClientSessionStore for AnyName {
        fn set_kx_hint(&self, _: ServerName<'static>, g: rustls::NamedGroup) {
            self.0
                .set_kx_hint(ServerName::try_from("site-a.test").unwrap(), g)
        }
        fn kx_hint(&self, _: &ServerName<'_>) -> Option<rustls::NamedGroup> {
            self.0
                .kx_hint(&ServerName::try_from("site-a.test").unwrap())
        }
        fn set_tls12_session(
            &self,
            _: ServerName<'static>,
            v: rustls::client::Tls12ClientSessionValue,
        ) {
            self.0
                .set_tls12_session(ServerName::try_from("site-a.test").unwrap(), v)
        }
        fn tls12_session(
            &self,
            _: &ServerName<'_>,
        ) -> Option<rustls::client::Tls12ClientSessionValue> {
            self.0
                .tls12_session(&ServerName::try_from("site-a.test").unwrap())
        }
        fn remove_tls12_session(&self, _: &ServerName<'static>) {
            self.0
                .remove_tls12_session(&ServerName::try_from("site-a.test").unwrap())
        }
        fn insert_tls13_ticket(
            &self,
            _: ServerName<'static>,
            v: rustls::client::Tls13ClientSessionValue,
        ) {
            self.0
                .insert_tls13_ticket(ServerName::try_from("site-a.test").unwrap(), v)
        }
        fn take_tls13_ticket(
            &self,
            _: &ServerName<'static>,
        ) -> Option<rustls::client::Tls13ClientSessionValue> {
            self.0
                .take_tls13_ticket(&ServerName::try_from("site-a.test").unwrap())
        }
    }
    let mut config = (*client.config).clone();
    config.resumption = rustls::client::Resumption::store(Arc::new(AnyName(Arc::new(
        rustls::client::ClientSessionMemoryCache::new(32),
    ))));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    support::Client {
        config: Arc::new(config),
    }
}

#[tokio::test]
async fn sessions_resume_on_their_own_site_only() {
    let env = Env::start(TWO_SITES).await;
    let client = promiscuous_resumption(&env.client(Some(&env.pki.alice)));

    // A full handshake on site A, then a resumed one on site A that still carries alice.
    let req = || {
        Request::get("/")
            .header("host", "site-a.test")
            .body(Bytes::new())
            .unwrap()
    };
    let resp = client.send(env.addr(), "site-a.test", req()).await.unwrap();
    assert_eq!(resp.status, 200);
    let tls = client.connect(env.addr(), "site-a.test").await.unwrap();
    assert_eq!(
        tls.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
    let resp = support::send_on(tls, req()).await.unwrap();
    assert_eq!(resp.echo()["headers"]["x-remote-user"], "EXAMPLE\\alice");

    // Site A's ticket offered to site B: a full handshake, never a resumption.
    let _ = client.send(env.addr(), "site-a.test", req()).await.unwrap();
    let tls = client.connect(env.addr(), "site-b.test").await.unwrap();
    assert_ne!(
        tls.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
}

#[tokio::test]
async fn resumed_sessions_are_rechecked_against_a_new_crl() {
    let env = Env::start(BASIC).await;
    let client = promiscuous_resumption(&env.client(Some(&env.pki.alice)));
    let req = || {
        Request::get("/secure")
            .header("host", "localhost")
            .body(Bytes::new())
            .unwrap()
    };
    let resp = client.send(env.addr(), "localhost", req()).await.unwrap();
    assert_eq!(resp.status, 200);

    // Revoking needs a known serial: issue alice a certificate with one and map it.
    let mut spec = certgate::pki::ClientSpec::new("alice2");
    spec.serial = Some(0x0A11CE);
    let alice2 = env.pki.ca.client(&spec).unwrap();
    std::fs::write(env.dir.path().join("alice2.crt"), &alice2.cert_pem).unwrap();
    let config = BASIC.replace("alice.crt", "alice2.crt");
    env.reload(&config);
    let client = promiscuous_resumption(&env.client(Some(&alice2)));
    let resp = client.send(env.addr(), "localhost", req()).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.echo()["headers"]["x-remote-user"], "EXAMPLE\\alice");

    std::fs::write(
        env.dir.path().join("ca.crl"),
        env.pki
            .ca
            .crl(&[support::REVOKED_SERIAL, 0x0A11CE], 7)
            .unwrap(),
    )
    .unwrap();
    env.reload(&config);
    let tls = client.connect(env.addr(), "localhost").await.unwrap();
    assert_eq!(
        tls.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
    let resp = support::send_on(tls, req()).await.unwrap();
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(resp.text().contains("403.13"));
}

#[tokio::test]
async fn crafted_paths_cannot_reach_protected_content_anonymously() {
    let env = Env::start(BASIC).await;
    let anon = env.client(None).with_alpn(&[b"http/1.1"]);
    let cases = [
        ("/public/../secure", 403),
        ("/public/./../secure/x", 403),
        ("/public/%2e%2e/secure", 403),
        ("/public/%2E%2E/secure", 403),
        ("/public%2f..%2fsecure", 403),
        ("/public%2F%2E%2E%2Fsecure", 403),
        ("//public/..//secure", 403),
        ("/publicity", 403),
        ("/public/..;/secure", 400),
        ("/public/%252e%252e/secure", 400),
        ("/public/%2e%2e;x/secure", 400),
        ("/public/%00/x", 400),
        ("/../public/x", 400),
        ("/PUBLIC/x", 200),
        ("/Public./x", 200),
        ("/secure/../public/x", 200),
    ];
    for (path, status) in cases {
        let req = Request::get(path)
            .header("host", "localhost")
            .body(Bytes::new())
            .unwrap();
        let resp = anon.send(env.addr(), "localhost", req).await.unwrap();
        assert_eq!(resp.status, status, "{path}: {}", resp.text());
        if status == 200 {
            let forwarded = resp.echo()["path"].as_str().unwrap().to_owned();
            assert!(
                forwarded.to_lowercase().starts_with("/public"),
                "{path} forwarded as {forwarded}"
            );
        }
    }
    // Backslashes cannot be sent through an http::Uri; write them raw.
    let raw = raw_http1(
        &anon,
        env.addr(),
        "localhost",
        "GET /public\\..\\secure HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        raw.starts_with("HTTP/1.1 403") || raw.starts_with("HTTP/1.1 400"),
        "{raw}"
    );
    assert!(!raw.contains("\"headers\""), "reached the backend: {raw}");
    // What the backend receives is the normalised path.
    let req = Request::get("/public/a/./b//../c")
        .header("host", "localhost")
        .body(Bytes::new())
        .unwrap();
    let resp = anon.send(env.addr(), "localhost", req).await.unwrap();
    assert_eq!(resp.echo()["path"], "/public/a/c");
}

#[tokio::test]
async fn large_uploads_and_downloads_stream_through() {
    let env = Env::start(BASIC).await;
    let body: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let digest = certgate::identity::hex_upper(&certgate::identity::sha256(&body));
    for alpn in [&b"http/1.1"[..], &b"h2"[..]] {
        let alice = env.client(Some(&env.pki.alice)).with_alpn(&[alpn]);
        let req = Request::post("/upload")
            .header("host", "localhost")
            .body(Bytes::from(body.clone()))
            .unwrap();
        let resp = alice.send(env.addr(), "localhost", req).await.unwrap();
        assert_eq!(resp.status, 200);
        let echo = resp.echo();
        assert_eq!(echo["body_length"], 5 * 1024 * 1024);
        assert_eq!(echo["body_sha256"], digest.as_str());

        let resp = alice
            .send(env.addr(), "localhost", get("/bytes/5242880"))
            .await
            .unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body.len(), 5 * 1024 * 1024);
    }
}

#[tokio::test]
async fn websocket_upgrades_are_tunnelled() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::start(BASIC).await;
    let alice = env.client(Some(&env.pki.alice)).with_alpn(&[b"http/1.1"]);
    let mut tls = alice.connect(env.addr(), "localhost").await.unwrap();
    tls.write_all(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let head = String::from_utf8_lossy(&support::read_head(&mut tls).await).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    tls.write_all(b"ping through the tunnel").await.unwrap();
    let mut echoed = [0u8; 23];
    tls.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping through the tunnel");
}

#[tokio::test]
async fn backend_failures_answer_502_and_504_without_detail() {
    // A backend address nothing listens on.
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let env = Env::start(&BASIC.replace("http://{backend}", &format!("http://{unused}"))).await;
    let alice = env.client(Some(&env.pki.alice));
    let resp = alice.get(env.addr(), "/").await;
    assert_eq!(resp.status, 502);
    assert!(
        !resp.text().contains(&unused.port().to_string()),
        "{}",
        resp.text()
    );

    // backend_response_timeout is 1s in BASIC.
    let env = Env::start(BASIC).await;
    let alice = env.client(Some(&env.pki.alice));
    let resp = alice.get(env.addr(), "/delay/3000").await;
    assert_eq!(resp.status, 504, "{}", resp.text());
    assert!(!resp.text().contains("127.0.0.1"));
}

#[tokio::test]
async fn tls_reporting_mode_rejects_in_the_handshake() {
    let config = BASIC
        .replace("anonymous_authentication = false", "anonymous_authentication = false\ncertificate_errors = \"tls\"")
        .replace("[[site.location]]\npath = \"/public\"\nssl_flags = \"Ssl\"\nanonymous_authentication = true\n", "");
    let env = Env::start(&config).await;
    // A valid certificate still works.
    let resp = env.client(Some(&env.pki.alice)).get(env.addr(), "/").await;
    assert_eq!(resp.status, 200);
    // An untrusted one fails the handshake (or the first read) instead of getting a page.
    let untrusted = env.client(Some(&env.pki.untrusted));
    let result = untrusted.send(env.addr(), "localhost", get("/")).await;
    assert!(result.is_err(), "{result:?}");
    // No certificate at all: required everywhere, so the handshake fails too.
    let result = env
        .client(None)
        .send(env.addr(), "localhost", get("/"))
        .await;
    assert!(result.is_err(), "{result:?}");
}
