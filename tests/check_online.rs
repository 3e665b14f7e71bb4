//! `certgate check --online` against a real CRL distribution point process: a good URL, a
//! down one and one serving garbage; the verified CRL is persisted, so a proxy started later
//! with the distribution point down still has it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use certgate::pki::Issued;
use certgate::pki::{Authority, ClientSpec};
use support::revocation::{CdpServer, CrlSpec, OcspResponder, OpensslCa, client_with_chain};
use support::{Env, Pki};

const BIN: &str = env!("CARGO_BIN_EXE_certgate");

const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]

[revocation]
state_dir = "{state}"
max_crl_bytes = 1048576

[[site]]
name = "Default Web Site"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["{ca}"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
anonymous_authentication = true
backend = "http://{backend}"

[site.revocation]
url_retrieval_timeout = "2s"
"#;

fn config(state: &Path, ca: &str) -> String {
    CONFIG
        .replace("{state}", &state.display().to_string())
        .replace("{ca}", ca)
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn check_online(dir: &Path, config_text: &str) -> (bool, String) {
    let path = dir.join("certgate.toml");
    std::fs::write(&path, config_text.replace("{backend}", "127.0.0.1:9")).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--online", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn bundle(dir: &Path, name: &str, cas: &[&Authority]) {
    let pem: String = cas.iter().map(|c| c.cert_pem.as_str()).collect();
    std::fs::write(dir.join(name), pem).unwrap();
}

#[tokio::test]
async fn every_url_of_the_configured_cas_is_fetched_verified_and_reported() {
    let pki = Arc::new(Pki::new());
    let served = tempfile::tempdir().unwrap();
    let mut cdp = CdpServer::start(served.path(), 0);
    OpensslCa::new(&pki.ca).crl(
        &CrlSpec {
            number: 5,
            ..CrlSpec::default()
        },
        &served.path().join("root.crl"),
    );
    let root_crl = cdp.url("root.crl");
    let down_url = format!("http://127.0.0.1:{}/root.crl", dead_port());
    let good = pki
        .ca
        .intermediate("Good Issuing CA", std::slice::from_ref(&root_crl), &[])
        .unwrap();
    let down = pki
        .ca
        .intermediate("Down Issuing CA", std::slice::from_ref(&down_url), &[])
        .unwrap();
    let garbage = pki
        .ca
        .intermediate("Garbage Issuing CA", &[cdp.url("garbage")], &[])
        .unwrap();
    // A real responder for the root that does not know the intermediate: a verified
    // `unknown` answer.
    let root_signer = Issued {
        cert_pem: pki.ca.cert_pem.clone(),
        key_pem: pki.ca.key_pem(),
        der: pki.ca.der.clone(),
    };
    let responder = OcspResponder::start(&pki.ca, &[], &root_signer, 60);
    let unknown = pki
        .ca
        .intermediate("Unknown Issuing CA", &[], &[responder.url()])
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());
    bundle(
        dir.path(),
        "all.pem",
        &[&pki.ca, &good, &down, &garbage, &unknown],
    );
    bundle(dir.path(), "good.pem", &[&pki.ca, &good]);
    let state = tempfile::tempdir().unwrap();

    let (ok, text) = check_online(dir.path(), &config(state.path(), "all.pem"));
    assert!(!ok, "{text}");
    let line = |url: &str| {
        text.lines()
            .find(|l| l.contains(url))
            .unwrap_or_else(|| panic!("no line for {url}:\n{text}"))
            .to_owned()
    };
    let good_line = line(&root_crl);
    assert!(
        good_line.contains("(named by 'Good Issuing CA'): OK:")
            && good_line.contains("signature verified with 'Example Test CA'")
            && good_line.contains("CRL number 5")
            && good_line.contains("saved in"),
        "{good_line}"
    );
    assert!(line(&down_url).contains("FAILED:"), "{text}");
    let garbage_line = line(&cdp.url("garbage"));
    assert!(garbage_line.contains("FAILED:"), "{garbage_line}");
    let ocsp_line = line(&responder.url());
    assert!(
        ocsp_line.contains("OCSP") && ocsp_line.contains("FAILED: 'Unknown Issuing CA' is unknown"),
        "{ocsp_line}"
    );
    assert!(
        text.contains("online: 4 URL(s) checked, 3 failed"),
        "{text}"
    );
    // The verified CRL is kept; so is the responder's signed "unknown" answer (OCSP answers
    // are persisted too), but nothing from the failed or garbage URLs.
    let persisted: Vec<String> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let crls = persisted.iter().filter(|n| n.starts_with("crl-")).count();
    let others = persisted
        .iter()
        .filter(|n| !n.starts_with("crl-") && !n.starts_with("ocsp-"))
        .count();
    assert_eq!(
        (crls, others),
        (1, 0),
        "only the verified CRL is kept: {persisted:?}"
    );

    let (ok, text) = check_online(dir.path(), &config(state.path(), "good.pem"));
    assert!(ok, "{text}");
    assert!(text.contains("1 URL(s) checked, 0 failed"), "{text}");

    // A proxy started afterwards, with the distribution point down, has the root's CRL for
    // the intermediate a client presents.
    cdp.stop();
    let leaf = good.client(&ClientSpec::new("leaf")).unwrap();
    let client = client_with_chain(
        &pki.ca.cert_pem,
        vec![leaf.der.clone(), good.der.clone()],
        &leaf.key_pem,
    );
    let warm = Env::start_with(Arc::clone(&pki), &config(state.path(), "ca.crt")).await;
    assert_eq!(client.get(warm.addr(), "/").await.code(), "200");
    let empty = tempfile::tempdir().unwrap();
    let cold = Env::start_with(Arc::clone(&pki), &config(empty.path(), "ca.crt")).await;
    assert_eq!(client.get(cold.addr(), "/").await.code(), "403.13");
}

#[test]
fn urls_whose_issuer_is_not_configured_are_not_fetched() {
    let pki = Pki::new();
    let intermediate = pki
        .ca
        .intermediate(
            "Lonely Issuing CA",
            &[format!("http://127.0.0.1:{}/root.crl", dead_port())],
            &[],
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());
    bundle(dir.path(), "lonely.pem", &[&intermediate]);
    let state = tempfile::tempdir().unwrap();
    let (ok, text) = check_online(dir.path(), &config(state.path(), "lonely.pem"));
    assert!(ok, "{text}");
    assert!(
        text.contains("its issuer is not among the configured client_ca certificates"),
        "{text}"
    );
    assert!(text.contains("0 URL(s) checked, 0 failed"), "{text}");
}

#[test]
fn configured_crl_files_are_verified_and_reported_one_line_each() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());
    // Same name as the configured CA, another key: its signature cannot verify.
    let impostor = Authority::new("Example Test CA").unwrap();
    std::fs::write(dir.path().join("good.crl"), pki.ca.crl(&[7], 7).unwrap()).unwrap();
    std::fs::write(dir.path().join("expired.crl"), pki.ca.crl(&[], -1).unwrap()).unwrap();
    std::fs::write(dir.path().join("forged.crl"), impostor.crl(&[], 7).unwrap()).unwrap();
    std::fs::write(
        dir.path().join("other.crl"),
        pki.other_ca.crl(&[], 7).unwrap(),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let text = config(state.path(), "ca.crt").replace(
        "client_ca = [\"ca.crt\"]",
        "client_ca = [\"ca.crt\"]\ncrl = [\"good.crl\", \"expired.crl\", \"forged.crl\", \"other.crl\"]",
    );
    let (ok, text) = check_online(dir.path(), &text);
    assert!(!ok, "failed CRL files make the check fail: {text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.contains(&format!("CRL file {name}:")))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"))
            .to_owned()
    };
    let good = line("good.crl");
    assert!(
        good.contains(": OK: ")
            && good.contains("1 entry, signature verified with 'Example Test CA'")
            && good.contains("nextUpdate 20"),
        "{good}"
    );
    assert!(
        line("expired.crl").contains(": FAILED: EXPIRED: past its nextUpdate"),
        "{text}"
    );
    assert!(
        line("forged.crl").contains(": FAILED: signature does not verify"),
        "{text}"
    );
    assert!(
        line("other.crl").contains(": FAILED: its issuer is not among the configured client_ca"),
        "{text}"
    );
    assert!(
        text.contains("online: 4 CRL file(s) checked, 3 failed"),
        "{text}"
    );
}
