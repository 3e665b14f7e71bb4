//! `[server.admin]`: the admin listener over TLS, `/status` only for a certificate that maps to
//! an allowed administrator (the IIS mapper section, as in a site); probes stay open.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bytes::Bytes;
use http::Request;
use support::{BASIC, Client, Env, Pki, send_on};

const ADMIN: &str = r#"backend_response_timeout = "1s"
admin_listen = "127.0.0.1:0"

[server.admin]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
allowed_users = ["example\\ALICE"]

[server.admin.iis_client_certificate_mapping_authentication]
enabled = true

[[server.admin.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\alice"
certificate_file = "alice.crt"

[[server.admin.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\bob"
certificate_file = "bob.crt"
"#;

async fn admin_get(
    client: &Client,
    addr: std::net::SocketAddr,
    path: &str,
) -> Result<(u16, String), Box<dyn std::error::Error + Send + Sync>> {
    let tls = client.connect(addr, "localhost").await?;
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Bytes::new())
        .unwrap();
    let resp = send_on(tls, req).await?;
    Ok((resp.status, resp.text()))
}

#[tokio::test]
async fn only_an_administrators_certificate_opens_the_status_page() {
    let config = BASIC.replace("backend_response_timeout = \"1s\"\n", ADMIN);
    let env = Env::start(&config).await;
    let admin = env.server.admin_addr.unwrap();

    let alice = env.client(Some(&env.pki.alice));
    let (status, body) = admin_get(&alice, admin, "/status").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("certgate status"));
    assert_eq!(admin_get(&alice, admin, "/metrics").await.unwrap().0, 200);

    // Mapped, but not an administrator.
    let bob = env.client(Some(&env.pki.bob));
    let (status, body) = admin_get(&bob, admin, "/status").await.unwrap();
    assert_eq!(status, 403, "{body}");
    // Valid, not mapped at all.
    let carol = env.client(Some(&env.pki.expired));
    assert!(
        admin_get(&carol, admin, "/status.json")
            .await
            .map_or(true, |(s, _)| s == 403)
    );

    // No certificate: the probes only.
    let anonymous = env.client(None);
    assert_eq!(
        admin_get(&anonymous, admin, "/healthz").await.unwrap().0,
        200
    );
    assert_eq!(
        admin_get(&anonymous, admin, "/readyz").await.unwrap().0,
        200
    );
    let (status, body) = admin_get(&anonymous, admin, "/status").await.unwrap();
    assert_eq!(status, 403);
    assert!(body.contains("administrator's client certificate"));

    // A certificate from an untrusted CA fails the handshake.
    let mallory = env.client(Some(&env.pki.untrusted));
    assert!(admin_get(&mallory, admin, "/status").await.is_err());

    // Plain HTTP is not spoken any more.
    let mut tcp = tokio::net::TcpStream::connect(admin).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    assert!(!String::from_utf8_lossy(&out).contains("certgate status"));
}

#[test]
fn admin_section_errors_name_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    Pki::new().write(dir.path());
    let text = BASIC
        .replace(
            "backend_response_timeout = \"1s\"\n",
            "[server.admin]\ncertificate = \"missing.crt\"\nprivate_key = \"server.key\"\n",
        )
        .replace("{backend}", "127.0.0.1:1");
    let errors = certgate::config::Runtime::from_toml(
        &text,
        &dir.path().join("certgate.toml"),
        &certgate::tls::server::ResumptionKeys::default(),
    )
    .unwrap_err()
    .to_string();
    for key in [
        "server.admin.certificate:",
        "server.admin.client_ca:",
        "server.admin.allowed_users:",
    ] {
        assert!(errors.contains(key), "{key} missing from {errors}");
    }
}
