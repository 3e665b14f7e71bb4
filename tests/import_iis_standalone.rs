//! `certgate import-iis` on inputs that are not a whole applicationHost.config: a site's
//! web.config on its own (`--site-name`) and the `<location>` fragment IIS's documentation
//! prints. The output is loaded by the real proxy and answers real mTLS requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use certgate::identity::CertFacts;
use certgate::pki::ClientSpec;
use support::{Env, Pki};

const BIN: &str = env!("CARGO_BIN_EXE_certgate");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iis");

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `certgate import-iis FILE ARGS...` with the flags for what IIS keeps outside its XML;
/// `{backend}` is left for the test harness to fill in.
fn import(file: &Path, args: &[&str]) -> Out {
    let out = Command::new(BIN)
        .arg("import-iis")
        .arg(file)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--certificate",
            "server.crt",
            "--private-key",
            "server.key",
            "--client-ca",
            "ca.crt",
            "--backend",
            "http://{backend}",
        ])
        .args(args)
        .output()
        .unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `tests/data/iis/NAME` with alice's certificate where the sample has a placeholder.
fn staged(dir: &Path, name: &str, placeholder: &str, pki: &Pki) -> std::path::PathBuf {
    let text = std::fs::read_to_string(Path::new(DATA).join(name)).unwrap();
    assert!(text.contains(placeholder));
    let b64 = CertFacts::parse(&pki.alice.der).unwrap().base64_der();
    let path = dir.join(name);
    std::fs::write(&path, text.replace(placeholder, &b64)).unwrap();
    path
}

#[tokio::test]
async fn the_documentations_location_fragment_imports_and_serves() {
    let pki = Arc::new(Pki::new());
    let dir = tempfile::tempdir().unwrap();
    let file = staged(
        dir.path(),
        "docs-one-to-one.location.xml",
        "Base64-Encoded-Certificate-Data",
        &pki,
    );
    let out = import(&file, &[]);
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("imported as a fragment without applicationHost.config"),
        "{}",
        out.stderr
    );
    // The plain-text password of the sample is not copied.
    assert!(!out.stdout.contains("\"Password\""), "{}", out.stdout);

    let env = Env::start_with(Arc::clone(&pki), &out.stdout).await;
    let alice = env.client(Some(&env.pki.alice));
    assert_eq!(
        alice.get(env.addr(), "/").await.remote_user().as_deref(),
        Some(r"DomainName\UserName")
    );
    let bob = env.client(Some(&env.pki.bob));
    assert_eq!(bob.get(env.addr(), "/").await.code(), "401.2");
    // sslFlags="Ssl, SslNegotiateCert" and anonymous off: no certificate, no mapping.
    assert_eq!(env.client(None).get(env.addr(), "/").await.code(), "401.2");
}

#[tokio::test]
async fn a_sites_web_config_imports_on_its_own() {
    let pki = Arc::new(Pki::new());
    let dir = tempfile::tempdir().unwrap();
    let file = staged(
        dir.path(),
        "default-web-site.web.config",
        "ALICE-BASE64",
        &pki,
    );
    let out = import(&file, &["--site-name", "Default Web Site"]);
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains("name = \"Default Web Site\""));
    assert!(out.stderr.contains("its section locks are not checked"));
    assert!(
        !out.stderr.contains("500.19 (0x80070021)"),
        "{}",
        out.stderr
    );

    let env = Env::start_with(Arc::clone(&pki), &out.stdout).await;
    // One-to-one first (alice is also in OU=Engineering), then the many-to-one rule.
    let alice = env.client(Some(&env.pki.alice));
    assert_eq!(
        alice.get(env.addr(), "/").await.remote_user().as_deref(),
        Some(r"EXAMPLE\alice")
    );
    let mut spec = ClientSpec::new("carol");
    spec.organizational_units = vec!["Engineering".into()];
    let carol = env.pki.ca.client(&spec).unwrap();
    assert_eq!(
        env.client(Some(&carol))
            .get(env.addr(), "/")
            .await
            .remote_user()
            .as_deref(),
        Some(r"EXAMPLE\engineering")
    );
    assert_eq!(
        env.client(Some(&env.pki.bob))
            .get(env.addr(), "/")
            .await
            .code(),
        "401.2"
    );
    // SslRequireCert at the root; the web.config's <location path="public"> is anonymous.
    assert_eq!(env.client(None).get(env.addr(), "/").await.code(), "403.7");
    assert_eq!(
        env.client(None).get(env.addr(), "/public/").await.code(),
        "200"
    );
}

#[test]
fn a_bare_mapper_section_with_site_name_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("section.xml");
    std::fs::write(
        &file,
        r#"<?xml version="1.0" encoding="utf-8"?>
<iisClientCertificateMappingAuthentication enabled="true" manyToOneCertificateMappingsEnabled="true">
    <manyToOneMappings>
        <add name="Contoso" permissionMode="Deny" userName="CONTOSO\nobody">
            <rules>
                <add certificateField="Issuer" certificateSubField="CN" matchCriteria="Contoso*" />
            </rules>
        </add>
    </manyToOneMappings>
</iisClientCertificateMappingAuthentication>
"#,
    )
    .unwrap();
    let out = import(&file, &["--site-name", "Intranet"]);
    assert!(out.ok, "{}", out.stderr);
    let config: toml::Value = toml::from_str(&out.stdout).unwrap();
    let mapper = &config["site"][0]["iis_client_certificate_mapping_authentication"];
    assert_eq!(config["site"][0]["name"].as_str(), Some("Intranet"));
    assert_eq!(mapper["enabled"].as_bool(), Some(true));
    let m = &mapper["many_to_one_mappings"][0];
    assert_eq!(m["permission_mode"].as_str(), Some("Deny"));
    assert_eq!(m["rules"][0]["match_criteria"].as_str(), Some("Contoso*"));
}

#[test]
fn inputs_that_need_or_forbid_site_name_say_so() {
    let web = Path::new(DATA).join("default-web-site.web.config");
    let out = import(&web, &[]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("name its site with --site-name"),
        "{}",
        out.stderr
    );

    let app_host = Path::new(DATA).join("applicationHost.config");
    let out = import(&app_host, &["--site-name", "Contoso Site"]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("choose sites with --site"),
        "{}",
        out.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fragment.xml");
    std::fs::write(
        &file,
        "<system.webServer>\n  <security>\n</system.webServer>\n",
    )
    .unwrap();
    let out = import(&file, &["--site-name", "S"]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains(":3:"),
        "the file's own line: {}",
        out.stderr
    );
    std::fs::write(&file, "<system.webServer/>\n").unwrap();
    let out = import(&file, &[]);
    assert!(!out.ok);
    assert!(out.stderr.contains("use --site-name"), "{}", out.stderr);
}
