//! Error pages: IIS's detailed page for local clients, the short page for remote ones, custom
//! pages (`File` and `ExecuteURL`), and the reference id on each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use support::{BASIC, Client, Env, Pki, Resp, send_on};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;

/// GET over a connection whose source address is `source` (127.0.0.2 is loopback, but not the
/// address certgate listens on, so it counts as a remote client).
async fn get_from(client: &Client, source: &str, addr: SocketAddr, path: &str) -> Resp {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let tls = TlsConnector::from(Arc::clone(&client.config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Bytes::new())
        .unwrap();
    send_on(tls, req).await.unwrap()
}

fn reference(resp: &Resp) -> String {
    let r = resp.headers["x-certgate-ref"].to_str().unwrap().to_owned();
    assert_eq!(r.len(), 10);
    assert!(
        resp.text().contains(&format!(">{r}</code>")),
        "{}",
        resp.text()
    );
    r
}

#[tokio::test]
async fn local_clients_get_the_detailed_page_and_remote_ones_the_short_page() {
    let env = Env::start(BASIC).await;
    let anonymous = env.client(None);

    let local = anonymous.get(env.addr(), "/secret?q=1").await;
    assert_eq!(local.status, 403);
    assert_eq!(local.code(), "403.7");
    let page = local.text();
    for expected in [
        "Detailed Error Information:",
        "Most likely causes:",
        "Things you can try:",
        "IIS Web Core (SSL client certificate)",
        "access@sslFlags: SslRequireCert and no certificate was sent",
        "https://localhost/secret?q=1",
        "<th>Logon Method</th><td>Not yet determined</td>",
        "Server Error in Site \"Default Web Site\"",
    ] {
        assert!(page.contains(expected), "{expected} missing from {page}");
    }
    let first = reference(&local);

    let remote = get_from(&anonymous, "127.0.0.2", env.addr(), "/secret?q=1").await;
    assert_eq!(remote.code(), "403.7");
    assert!(
        !remote.text().contains("Most likely causes"),
        "{}",
        remote.text()
    );
    assert!(!remote.text().contains("/secret"), "{}", remote.text());
    let second = reference(&remote);
    assert_ne!(first, second);

    // The mapper's decision names the mapper, with the certificate it saw.
    let bob = env.client(Some(&env.pki.bob));
    let unmapped = bob.get(env.addr(), "/").await;
    assert_eq!(unmapped.code(), "401.2");
    let page = unmapped.text();
    assert!(page.contains("<th>Module</th><td>IIS Client Certificate Mapping Authentication</td>"));
    assert!(page.contains("CN=bob"), "{page}");
    let thumbprint = certgate::identity::CertFacts::parse(&env.pki.bob.der)
        .unwrap()
        .thumbprint();
    assert!(page.contains(&thumbprint), "{page}");
}

const CUSTOM: &str = r#"
[site.http_errors]
error_mode = "DetailedLocalOnly"

[[site.http_errors.error]]
status_code = 403
sub_status_code = 7
path = "403-7.html"

[[site.http_errors.error]]
status_code = 401
path = "/errors/401.html"
response_mode = "ExecuteURL"
"#;

fn with_custom(mode: &str) -> String {
    BASIC.replace(
        "[[site.location]]",
        &format!(
            "{}\n[[site.location]]",
            CUSTOM.replace("DetailedLocalOnly", mode)
        ),
    )
}

#[tokio::test]
async fn custom_pages_from_a_file_and_from_the_backend() {
    let staged = tempfile::tempdir().unwrap();
    std::fs::write(
        staged.path().join("403-7.html"),
        "<html><body><h1>Contoso: please insert your smart card</h1>\
         <p>Ref {{reference}}</p></body></html>",
    )
    .unwrap();
    let env = Env::start_staged(
        Arc::new(Pki::new()),
        &with_custom("DetailedLocalOnly"),
        staged.path(),
    )
    .await;
    let anonymous = env.client(None);

    // Remote: the custom page, with the reference filled in.
    let remote = get_from(&anonymous, "127.0.0.2", env.addr(), "/").await;
    assert_eq!(remote.status, 403);
    assert!(remote.text().contains("please insert your smart card"));
    let r = remote.headers["x-certgate-ref"].to_str().unwrap();
    assert!(
        remote.text().contains(&format!("Ref {r}")),
        "{}",
        remote.text()
    );
    // Local: still the detailed page (DetailedLocalOnly).
    let local = anonymous.get(env.addr(), "/").await;
    assert!(local.text().contains("Detailed Error Information:"));

    // ExecuteURL: the echo backend serves the page (it reports the path it was asked for).
    let bob = env.client(Some(&env.pki.bob));
    let remote = get_from(&bob, "127.0.0.2", env.addr(), "/").await;
    assert_eq!(remote.status, 401);
    assert_eq!(
        remote.echo()["path"],
        "/errors/401.html",
        "{}",
        remote.text()
    );
    assert!(remote.echo()["headers"].get("x-remote-user").is_none());

    // errorMode Custom: local clients get the custom page too.
    env.reload(&with_custom("Custom"));
    let local = anonymous.get(env.addr(), "/").await;
    assert!(local.text().contains("please insert your smart card"));
}

#[test]
fn a_missing_custom_page_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    Pki::new().write(dir.path());
    let path = dir.path().join("certgate.toml");
    let text = with_custom("Sometimes").replace("{backend}", "127.0.0.1:1");
    let errors = certgate::config::Runtime::from_toml(
        &text,
        &path,
        &certgate::tls::server::ResumptionKeys::default(),
    )
    .unwrap_err();
    let text = errors.to_string();
    assert!(
        text.contains("site[0].http_errors.error_mode: unknown error mode `Sometimes`"),
        "{text}"
    );
    assert!(
        text.contains("site[0].http_errors.error[0].path:") && text.contains("403-7.html"),
        "{text}"
    );
}

/// `/hr` has its own page for 403.7 and `errorMode="Custom"` (IIS `<location path="hr">`
/// `<httpErrors>`); everything else comes from the site.
const HR: &str = r#"
[[site.location]]
path = "/hr"

[site.location.http_errors]
error_mode = "Custom"

[[site.location.http_errors.error]]
status_code = 403
sub_status_code = 7
path = "hr-403-7.html"
"#;

#[tokio::test]
async fn a_location_has_its_own_pages_and_mode_over_the_sites() {
    let staged = tempfile::tempdir().unwrap();
    std::fs::write(staged.path().join("403-7.html"), "site page {{reference}}").unwrap();
    std::fs::write(
        staged.path().join("hr-403-7.html"),
        "<p>HR: insert your badge, ref {{reference}}</p>",
    )
    .unwrap();
    let config = format!("{}{HR}", with_custom("DetailedLocalOnly"));
    let env = Env::start_staged(Arc::new(Pki::new()), &config, staged.path()).await;
    let anonymous = env.client(None);

    // In /hr: the location's page, even for a local client (its mode is Custom).
    let local = anonymous.get(env.addr(), "/hr/payroll").await;
    assert_eq!(local.status, 403);
    let r = local.headers["x-certgate-ref"].to_str().unwrap();
    assert_eq!(
        local.text(),
        format!("<p>HR: insert your badge, ref {r}</p>")
    );
    // Outside it: the site's mode and page.
    let local = anonymous.get(env.addr(), "/payroll").await;
    assert!(local.text().contains("Detailed Error Information:"));
    let remote = get_from(&anonymous, "127.0.0.2", env.addr(), "/").await;
    assert!(remote.text().starts_with("site page "), "{}", remote.text());
    // A status the location has no page for: the site's (ExecuteURL on the backend).
    let bob = env.client(Some(&env.pki.bob));
    let resp = bob.get(env.addr(), "/hr/").await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.echo()["path"], "/errors/401.html", "{}", resp.text());
}

#[test]
fn a_bad_location_page_is_a_configuration_error_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    Pki::new().write(dir.path());
    std::fs::write(dir.path().join("403-7.html"), "x").unwrap();
    let path = dir.path().join("certgate.toml");
    let text =
        format!("{}{HR}", with_custom("DetailedLocalOnly")).replace("{backend}", "127.0.0.1:1");
    let errors = certgate::config::Runtime::from_toml(
        &text,
        &path,
        &certgate::tls::server::ResumptionKeys::default(),
    )
    .unwrap_err();
    let text = errors.to_string();
    assert!(
        text.contains("site[0].location[1].http_errors.error[0].path:")
            && text.contains("hr-403-7.html"),
        "{text}"
    );
}
