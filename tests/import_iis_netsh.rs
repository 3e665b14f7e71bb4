//! `certgate import-iis --netsh`: the real binary reads `netsh http show sslcert` as Windows
//! prints it, with and without applicationHost.config, and `certgate check` accepts the result.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::Pki;

const BIN: &str = env!("CARGO_BIN_EXE_certgate");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iis");

/// A directory with the test PKI and the two IIS inputs.
fn staged() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    Pki::new().write(dir.path());
    for name in ["netsh-sslcert.txt", "netsh.applicationHost.config"] {
        std::fs::copy(Path::new(DATA).join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn certgate(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

const FLAGS: &[&str] = &[
    "--listen",
    "127.0.0.1:0",
    "--certificate",
    "server.crt",
    "--private-key",
    "server.key",
    "--client-ca",
    "ca.crt",
    "--backend",
    "http://127.0.0.1:9",
    "-o",
    "out.toml",
];

fn import(dir: &Path, args: &[&str]) -> (toml::Value, String, String) {
    let mut all = vec!["import-iis"];
    all.extend_from_slice(args);
    all.extend_from_slice(FLAGS);
    let out = certgate(dir, &all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let text = std::fs::read_to_string(dir.join("out.toml")).unwrap();
    let check = certgate(dir, &["check", "-c", "out.toml"]);
    assert!(
        check.status.success(),
        "check failed:\n{}\n{text}",
        String::from_utf8_lossy(&check.stderr)
    );
    (toml::from_str(&text).unwrap(), text, stderr)
}

fn revocation<'a>(config: &'a toml::Value, site: &str) -> &'a toml::Value {
    let sites = config["site"].as_array().unwrap();
    let site = sites
        .iter()
        .find(|s| s["name"].as_str() == Some(site))
        .unwrap_or_else(|| panic!("no site {site}"));
    &site["revocation"]
}

#[test]
fn with_applicationhost_config_each_site_gets_its_http_sys_bindings_settings() {
    let dir = staged();
    let (config, text, stderr) = import(
        dir.path(),
        &[
            "netsh.applicationHost.config",
            "--netsh",
            "netsh-sslcert.txt",
        ],
    );
    // SNI bindings contoso.test:443 and www.contoso.test:443.
    let contoso = revocation(&config, "Contoso Site");
    assert_eq!(contoso["check"].as_str(), Some("chain"));
    assert_eq!(contoso["cached_only"].as_bool(), Some(false));
    assert_eq!(contoso["freshness_time"].as_str(), Some("1h"));
    assert_eq!(contoso["url_retrieval_timeout"].as_str(), Some("5s"));
    // 10.0.0.5:8443 has no binding of its own; http.sys uses 0.0.0.0:8443's.
    let fabrikam = revocation(&config, "Fabrikam");
    assert_eq!(fabrikam["check"].as_str(), Some("none"));
    assert_eq!(fabrikam["url_retrieval_timeout"].as_str(), Some("15s"));
    // Warnings on stderr and in the file's header comment.
    for expected in [
        "netsh-sslcert.txt:71 (IP:port 0.0.0.0:8443, site 'Fabrikam'): DS Mapper Usage is Enabled",
        "Usage Check is Disabled",
        "Ctl Identifier 'ContosoPartnerCAs'",
        "Negotiate Client Certificate is Disabled",
        "netsh-sslcert.txt:103: Central Certificate Store 443 matches no imported site",
        "netsh-sslcert.txt:135: IP:port 0.0.0.0:5986 matches no imported site",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
        assert!(text.contains(expected), "{expected}\n{text}");
    }
    assert!(
        !stderr.contains("site 'Contoso Site'): Negotiate"),
        "{stderr}"
    );
}

#[test]
fn alone_the_bindings_become_sites() {
    let dir = staged();
    // Two bindings without a host name cannot both be catch-all sites: pick the sites.
    let (config, _, stderr) = import(
        dir.path(),
        &[
            "--netsh",
            "netsh-sslcert.txt",
            "--site",
            "contoso.test:443",
            "--site",
            "0.0.0.0:8443",
        ],
    );
    assert!(
        stderr.contains("imported without applicationHost.config"),
        "{stderr}"
    );
    assert_eq!(
        revocation(&config, "contoso.test:443")["freshness_time"].as_str(),
        Some("1h")
    );
    assert_eq!(
        revocation(&config, "0.0.0.0:8443")["check"].as_str(),
        Some("none")
    );
    let sites = config["site"].as_array().unwrap();
    assert_eq!(sites[0]["host_names"][0].as_str(), Some("contoso.test"));
}

#[test]
fn a_utf16_crlf_dump_as_powershell_writes_it_is_read() {
    let dir = staged();
    let text = std::fs::read_to_string(dir.path().join("netsh-sslcert.txt")).unwrap();
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(
        text.replace('\n', "\r\n")
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    std::fs::write(dir.path().join("netsh-sslcert.txt"), bytes).unwrap();
    let (config, _, _) = import(
        dir.path(),
        &[
            "netsh.applicationHost.config",
            "--netsh",
            "netsh-sslcert.txt",
        ],
    );
    assert_eq!(
        revocation(&config, "Fabrikam")["check"].as_str(),
        Some("none")
    );
}

#[test]
fn a_malformed_dump_is_refused_naming_the_line_and_nothing_is_written() {
    let dir = staged();
    let path = dir.path().join("netsh-sslcert.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen(
            "Usage Check                  : Enabled",
            "Usage Check : Yes",
            1,
        ),
    )
    .unwrap();
    let mut args = vec!["import-iis", "--netsh", "netsh-sslcert.txt"];
    args.extend_from_slice(FLAGS);
    let out = certgate(dir.path(), &args);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("netsh-sslcert.txt:12: 'Usage Check': 'Yes' is not Enabled or Disabled"),
        "{stderr}"
    );
    assert!(!dir.path().join("out.toml").exists());
}
