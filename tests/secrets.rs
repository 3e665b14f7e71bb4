//! Every password certgate reads (the directory's bind password, mapping passwords) goes through
//! one reader with one set of rules: one trailing line ending removed, nothing else trimmed, an
//! empty value refused with the key named and the value never shown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use certgate::config::{ConfigError, Runtime};
use certgate::tls::server::ResumptionKeys;
use support::Pki;

const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]

[directory]
urls = ["ldaps://127.0.0.1:1"]
ca = "ca.crt"
bind_dn = "svc-certgate@example.test"
bind_password_file = "{bind}"
base_dn = "DC=example,DC=test"

[[site]]
name = "S"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "http://127.0.0.1:9"

[site.directory]
verify = "credentials"

[site.iis_client_certificate_mapping_authentication]
enabled = true
[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\alice"
certificate_file = "alice.crt"
password_file = "{mapping}"
"#;

fn load(dir: &Path, bind: &str, mapping: &str) -> Result<Runtime, Vec<ConfigError>> {
    let path = dir.join("certgate.toml");
    let text = CONFIG.replace("{bind}", bind).replace("{mapping}", mapping);
    std::fs::write(&path, text).unwrap();
    Runtime::load(&path, &ResumptionKeys::default()).map_err(|e| e.0)
}

#[test]
fn bind_and_mapping_passwords_follow_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write(dir.path());
    for (name, contents) in [
        ("good.pw", "s3cret\n"),
        ("blank.pw", "\n"),
        ("crlf.pw", "s3cret\r\n\r\n"),
    ] {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }

    // A file holding only a line ending is empty for both readers (the mapping reader once
    // accepted it, and an empty password binds anonymously in AD).
    let errors = load(dir.path(), "blank.pw", "blank.pw").unwrap_err();
    let mut keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "directory.bind_password_file",
            "site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[0].password_file",
        ],
        "{errors:#?}"
    );
    for e in &errors {
        assert!(e.reason.contains("blank.pw is empty"), "{e}");
    }

    // One line ending comes off, nothing more: the same bytes give the same password.
    let runtime = load(dir.path(), "good.pw", "crlf.pw").unwrap();
    let facts = certgate::identity::CertFacts::parse(&pki.alice.der).unwrap();
    let user = runtime.sites[0]
        .scope_for("/")
        .mapper
        .one_to_one
        .lookup(&facts.sha256)
        .cloned()
        .unwrap();
    assert_eq!(user.password.as_ref().unwrap().expose(), "s3cret\r\n");
    let shown = format!("{:?}", runtime.sites[0].scope_for("/").mapper);
    assert!(!shown.contains("s3cret"), "{shown}");
}
