//! The `certgate` binary as a person uses it: `cert-b64`, and `demo` end to end with JSON
//! access logs and a clean Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use certgate::identity::CertFacts;
use certgate::pki::{Authority, ClientSpec, Issued};
use http::Request;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_certgate");

#[test]
fn cert_b64_prints_the_iis_one_line_form_for_pem_and_der() {
    let ca = Authority::new("CA").unwrap();
    let cert = ca.client(&ClientSpec::new("alice")).unwrap();
    let expected = CertFacts::parse(&cert.der).unwrap().base64_der();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.crt"), &cert.cert_pem).unwrap();
    std::fs::write(dir.path().join("a.der"), cert.der.as_ref()).unwrap();
    for name in ["a.crt", "a.der"] {
        let out = Command::new(BIN)
            .arg("cert-b64")
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), expected);
        assert!(
            !String::from_utf8_lossy(&out.stdout)
                .trim_end()
                .contains('\n')
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("CN=alice"));
    }
    std::fs::write(
        dir.path().join("two.crt"),
        format!("{}{}", cert.cert_pem, ca.cert_pem),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("cert-b64")
        .arg(dir.path().join("two.crt"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds 2 certificates"));
}

/// A PKCS#8 key as PEM.
fn pem_key(key: &rustls::pki_types::PrivateKeyDer<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(key.secret_der());
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

fn load_identity(dir: &std::path::Path, name: &str) -> Issued {
    let cert_pem = std::fs::read_to_string(dir.join(format!("{name}.crt"))).unwrap();
    let key_pem = std::fs::read_to_string(dir.join(format!("{name}.key"))).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    Issued {
        cert_pem,
        key_pem,
        der,
    }
}

#[tokio::test]
async fn demo_serves_what_it_prints_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["--log-format", "json", "demo", "--port", "0", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let read = async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            printed.push_str(&line);
            printed.push('\n');
            if line.contains("Press Ctrl-C") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .unwrap();
    let port: u16 = printed
        .split("https://localhost:")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in: {printed}"));
    assert!(printed.contains("curl --cacert"), "{printed}");
    let addr = ([127, 0, 0, 1], port).into();

    let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let alice = load_identity(dir.path(), "alice");
    let bob = load_identity(dir.path(), "bob");
    let get = |path: &str| {
        Request::get(path)
            .header("host", "localhost")
            .body(Bytes::new())
            .unwrap()
    };

    let resp = support::Client::new(&ca, Some(&alice))
        .send(addr, "localhost", get("/hello"))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.echo()["headers"]["x-remote-user"], "DEMO\\alice");
    let resp = support::Client::new(&ca, Some(&bob))
        .send(addr, "localhost", get("/hello"))
        .await
        .unwrap();
    assert_eq!(resp.status, 401);
    assert!(resp.text().contains("401.2"));
    let resp = support::Client::new(&ca, None)
        .send(addr, "localhost", get("/hello"))
        .await
        .unwrap();
    assert!(resp.text().contains("403.7"));
    let resp = support::Client::new(&ca, None)
        .send(addr, "localhost", get("/public/"))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);

    // alice.pfx and bob.pfx, with the printed password: OpenSSL reads them, and alice's PFX is a
    // working client identity (what a browser presents after importing it).
    let password = printed
        .split("password: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no PFX password in: {printed}"))
        .to_owned();
    assert!(printed.contains("Current User"), "{printed}");
    assert!(printed.contains("Your Certificates > Import"), "{printed}");
    for name in ["alice", "bob"] {
        let pfx = dir.path().join(format!("{name}.pfx"));
        let out = Command::new("openssl")
            .args(["pkcs12", "-info", "-noout", "-passin"])
            .arg(format!("pass:{password}"))
            .arg("-in")
            .arg(&pfx)
            .output()
            .unwrap_or_else(|e| {
                panic!("the openssl command is needed (apt-get install openssl): {e}")
            });
        assert!(out.status.success(), "{name}.pfx: {out:?}");
        let wrong = Command::new("openssl")
            .args(["pkcs12", "-info", "-noout", "-passin", "pass:wrong", "-in"])
            .arg(&pfx)
            .output()
            .unwrap();
        assert!(
            !wrong.status.success(),
            "{name}.pfx opened with a wrong password"
        );
    }
    let (chain, key) = certgate::tls::load_pfx(&dir.path().join("alice.pfx"), &password).unwrap();
    let from_pfx = Issued {
        cert_pem: String::new(),
        key_pem: pem_key(&key),
        der: chain[0].clone(),
    };
    let resp = support::Client::new(&ca, Some(&from_pfx))
        .send(addr, "localhost", get("/hello"))
        .await
        .unwrap();
    assert_eq!(resp.echo()["headers"]["x-remote-user"], "DEMO\\alice");

    // Ctrl-C: a clean exit.
    let pid = child.id().unwrap();
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");

    // One JSON access-log line per request, with IIS status and substatus.
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    let access: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "certgate::access")
        .collect();
    assert_eq!(access.len(), 5, "{stderr}");
    let alice_line = &access[0];
    assert_eq!(alice_line["status"], 200);
    assert_eq!(alice_line["user"], "DEMO\\alice");
    assert_eq!(alice_line["site"], "Default Web Site");
    assert_eq!(alice_line["path"], "/hello");
    assert_eq!(alice_line["client_ip"], "127.0.0.1");
    assert_eq!(
        alice_line["thumbprint"],
        CertFacts::parse(&alice.der).unwrap().thumbprint()
    );
    assert!(alice_line["bytes"].as_u64().unwrap() > 0);
    assert!(alice_line["duration_ms"].is_string() || alice_line["duration_ms"].is_number());
    assert_eq!(access[1]["code"], "401.2");
    assert_eq!(access[2]["substatus"], 7);
}
