//! The admin status page in a real browser: headless Debian `chromium` loads it moments after
//! the test produced denials, and the test reads the rendered DOM (`--dump-dom`). The same data
//! as JSON, the explain trace one click away, search by reference id, and escaping of hostile
//! certificate names. scripts/test.sh installs chromium.
//!
//! `CERTGATE_SCREENSHOT_DIR=docs` also writes `status-page.png` there (how docs/ got its
//! screenshot).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use tokio::process::Command;

use certgate::pki::ClientSpec;
use support::{BASIC, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs headless chromium with a fresh profile and no background traffic; returns stdout.
/// Asynchronous, so the proxy in this test's runtime keeps serving while the browser loads.
async fn chromium(args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let run = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(90), run)
        .await
        .expect("chromium did not finish within 90s")
        .unwrap_or_else(|e| {
            panic!("cannot run chromium ({e}); install it (apt-get install chromium) or run scripts/test.sh")
        });
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn dump_dom(url: &str) -> String {
    chromium(&["--dump-dom", url]).await
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

fn reference(resp: &support::Resp) -> String {
    resp.headers["x-certgate-ref"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_shows_the_denials_just_made_with_their_explain_trace() {
    let config = BASIC.replace(
        "backend_response_timeout = \"1s\"",
        "backend_response_timeout = \"1s\"\nadmin_listen = \"127.0.0.1:0\"",
    );
    let env = Env::start(&config).await;
    let admin = env.server.admin_addr.unwrap();

    // Denials: no certificate (403.7), an unmapped certificate (401.2), and one whose subject
    // is markup (it must show as text).
    let missing = env.client(None).get(env.addr(), "/payroll/report").await;
    assert_eq!(missing.code(), "403.7");
    let unmapped = env.client(Some(&env.pki.bob)).get(env.addr(), "/hr").await;
    assert_eq!(unmapped.code(), "401.2");
    let hostile = env
        .pki
        .ca
        .client(&ClientSpec::new("<b>mallory</b>"))
        .unwrap();
    let marked = env.client(Some(&hostile)).get(env.addr(), "/x").await;
    assert_eq!(marked.code(), "401.2");
    let (r_missing, r_unmapped) = (reference(&missing), reference(&unmapped));
    let bob_thumbprint = certgate::identity::CertFacts::parse(&env.pki.bob.der)
        .unwrap()
        .thumbprint();

    // The status page, rendered by the browser.
    let dom = dump_dom(&format!("http://{admin}/status")).await;
    for expected in [
        "certgate status",
        r_missing.as_str(),
        r_unmapped.as_str(),
        "/payroll/report",
        "403.7",
        "401.2",
        "CN=bob",
        bob_thumbprint.as_str(),
        "Default Web Site",
        "one-to-one 1",
        "Example Test CA",
        "Configuration loads",
        &format!("href=\"/status/denial/{r_unmapped}\""),
    ] {
        assert!(
            dom.contains(expected),
            "`{expected}` not in the DOM:\n{dom}"
        );
    }
    assert!(dom.contains("&lt;b&gt;mallory&lt;/b&gt;"), "{dom}");
    assert!(!dom.contains("<b>mallory"), "{dom}");
    assert!(!dom.contains("<script"), "{dom}");
    // Newest first.
    let (first, second) = (
        dom.find(&r_unmapped).unwrap(),
        dom.find(&r_missing).unwrap(),
    );
    assert!(first < second);

    // One click away: the explain trace for bob's denial.
    let dom = dump_dom(&format!("http://{admin}/status/denial/{r_unmapped}")).await;
    assert!(dom.contains("id=\"explain\""), "{dom}");
    assert!(dom.contains("401.2"), "{dom}");
    assert!(dom.contains("CN=bob"), "{dom}");
    assert!(dom.contains("one-to-one"), "{dom}");

    // Search by reference, as typed by a person (lower case, with a dash): the GET form's URL.
    let typed = format!("{}-{}", &r_missing[..5], &r_missing[5..]).to_lowercase();
    let dom = dump_dom(&format!("http://{admin}/status?ref={typed}")).await;
    assert!(dom.contains("id=\"explain\""), "{dom}");
    assert!(dom.contains("/payroll/report"), "{dom}");
    assert!(dom.contains("403.7"), "{dom}");
    let dom = dump_dom(&format!("http://{admin}/status?ref=ZZZZZZZZZZ")).await;
    assert!(
        dom.contains("No denial with reference ZZZZZZZZZZ is kept"),
        "{dom}"
    );

    // The same data as JSON, without certificate bodies.
    let (status, json) = http_get(admin, "/status.json").await;
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["denials"][1]["reference"], r_unmapped.as_str());
    assert_eq!(report["denials"][1]["code"], "401.2");
    assert_eq!(report["denials"][1]["thumbprint"], bob_thumbprint.as_str());
    assert_eq!(report["sites"][0]["mappings"]["one_to_one"], 1);
    assert!(
        report["sites"][0]["server_certificates"][0]["days_left"]
            .as_i64()
            .unwrap()
            > 0
    );
    let bob_b64 = certgate::identity::CertFacts::parse(&env.pki.bob.der)
        .unwrap()
        .base64_der();
    assert!(!json.contains(&bob_b64[..40]));
    assert!(!json.contains("PRIVATE KEY"));

    // A screenshot for the docs, when asked for.
    let shots = tempfile::tempdir().unwrap();
    let dir = std::env::var("CERTGATE_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| shots.path().to_owned());
    let png = dir.join("status-page.png");
    chromium(&[
        &format!("--screenshot={}", png.display()),
        "--hide-scrollbars",
        &format!("http://{admin}/status"),
    ])
    .await;
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG"),
        "not a PNG: {}",
        Path::new(&png).display()
    );
}
