//! Every kind of bad configuration is an error naming the file, the TOML key path and the
//! reason; `certgate check` lists them all and exits non-zero.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;

use certgate::config::{ConfigError, Runtime};
use certgate::tls::server::ResumptionKeys;
use support::{BASIC, Pki};

fn dir_with_pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    Pki::new().write(dir.path());
    dir
}

fn load(dir: &Path, text: &str) -> Result<Runtime, Vec<ConfigError>> {
    let path = dir.join("certgate.toml");
    let text = text.replace("{backend}", "127.0.0.1:9");
    std::fs::write(&path, &text).unwrap();
    Runtime::load(&path, &ResumptionKeys::default()).map_err(|e| e.0)
}

/// Asserts exactly one error at `key` whose reason contains `reason`, naming the file.
fn assert_error(dir: &Path, text: &str, key: &str, reason: &str) {
    let errors = load(dir, text)
        .err()
        .unwrap_or_else(|| panic!("accepted:\n{text}"));
    let found = errors.iter().find(|e| e.key == key);
    let Some(e) = found else {
        panic!("no error at `{key}`; got: {errors:#?}");
    };
    assert!(e.reason.contains(reason), "`{}` lacks `{reason}`", e.reason);
    assert!(e.file.ends_with("certgate.toml"));
    let shown = e.to_string();
    assert!(
        shown.contains("certgate.toml") && shown.contains(key),
        "{shown}"
    );
}

#[test]
fn the_basic_config_loads() {
    let dir = dir_with_pki();
    let runtime = load(dir.path(), BASIC).unwrap();
    assert_eq!(runtime.sites.len(), 1);
}

#[test]
fn unknown_keys_name_their_path_and_position() {
    let dir = dir_with_pki();
    let text = BASIC.replacen("enabled = true\n", "enabled = true\nenabeld = true\n", 1);
    let errors = load(dir.path(), &text).unwrap_err();
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert!(e.reason.contains("unknown field `enabeld`"), "{e}");
    assert!(e.reason.contains("line "), "{e}");
    assert!(
        e.key
            .contains("iis_client_certificate_mapping_authentication"),
        "{e}"
    );
    // Wrong types too.
    let text = BASIC.replace(
        "anonymous_authentication = false",
        "anonymous_authentication = \"no\"",
    );
    let errors = load(dir.path(), &text).unwrap_err();
    assert_eq!(errors[0].key, "site[0].anonymous_authentication");
}

#[test]
fn cipher_suite_lists_name_the_entry_at_fault() {
    let dir = dir_with_pki();
    let with = |suites: &str| {
        BASIC.replacen(
            "backend_response_timeout = \"1s\"\n",
            &format!("backend_response_timeout = \"1s\"\ncipher_suites = [{suites}]\n"),
            1,
        )
    };
    assert_error(
        dir.path(),
        &with(r#""TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256""#),
        "server.cipher_suites[1]",
        "`ECDHE-RSA-AES128-GCM-SHA256` is not a cipher suite certgate offers; use one of: ",
    );
    assert_error(
        dir.path(),
        &with(r#""TLS_AES_128_GCM_SHA256", "tls_aes_128_gcm_sha256""#),
        "server.cipher_suites[1]",
        "listed twice (also at [0])",
    );
    assert_error(
        dir.path(),
        &with(r#""TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256""#),
        "server.cipher_suites",
        "no TLS 1.3 suite is listed",
    );
    // The IANA names of TLS 1.3 and TLS 1.2 suites load.
    load(
        dir.path(),
        &with(r#""TLS_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384""#),
    )
    .unwrap();
}

#[test]
fn missing_and_unreadable_files() {
    let dir = dir_with_pki();
    assert_error(
        dir.path(),
        &BASIC.replace("\"server.crt\"", "\"missing.crt\""),
        "site[0].certificate",
        "cannot read",
    );
    std::fs::write(
        dir.path().join("garbage.key"),
        "-----BEGIN NONSENSE-----\nAAAA\n-----END NONSENSE-----\n",
    )
    .unwrap();
    assert_error(
        dir.path(),
        &BASIC.replace("\"server.key\"", "\"garbage.key\""),
        "site[0].private_key",
        "no usable private key",
    );
    std::fs::write(dir.path().join("notacert.crt"), "hello").unwrap();
    assert_error(
        dir.path(),
        &BASIC.replace(
            "client_ca = [\"ca.crt\"]",
            "client_ca = [\"ca.crt\", \"notacert.crt\"]",
        ),
        "site[0].client_ca[1]",
        "neither PEM nor DER",
    );
    // A key that does not belong to the certificate.
    std::fs::write(dir.path().join("other.key"), Pki::new().server.key_pem).unwrap();
    assert_error(
        dir.path(),
        &BASIC.replace("\"server.key\"", "\"other.key\""),
        "site[0].private_key",
        "cannot be used with the certificate",
    );
}

#[test]
fn bad_mapping_certificates() {
    let dir = dir_with_pki();
    let inline = |value: &str| {
        BASIC.replace(
            "certificate_file = \"alice.crt\"",
            &format!("certificate = \"{value}\""),
        )
    };
    assert_error(
        dir.path(),
        &inline("MIIC!!notbase64"),
        "site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[0].certificate",
        "not valid base64",
    );
    assert_error(
        dir.path(),
        &inline("aGVsbG8gd29ybGQ="),
        "site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[0].certificate",
        "not an X.509 certificate",
    );
    // The same certificate twice, once as a file and once pasted as PEM with line breaks.
    let pem = std::fs::read_to_string(dir.path().join("alice.crt")).unwrap();
    let dup = format!(
        "{BASIC}\n[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
         user_name = \"EXAMPLE\\\\mallory\"\ncertificate = '''\n{pem}'''\n"
    );
    let dup = dup.replace(
        "[[site.location]]\npath = \"/public\"\nssl_flags = \"Ssl\"\nanonymous_authentication = true\n",
        "",
    );
    assert_error(
        dir.path(),
        &dup,
        "site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[1]",
        "already mapped by site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[0]",
    );
}

#[test]
fn host_names_claimed_twice() {
    let dir = dir_with_pki();
    let second = BASIC
        .split("[[site]]")
        .nth(1)
        .unwrap()
        .replace("Default Web Site", "Second Site")
        .replace(
            "[\"localhost\", \"site-a.test\"]",
            "[\"other.test\", \"SITE-A.test\"]",
        );
    let text = format!("{BASIC}\n[[site]]{second}");
    assert_error(
        dir.path(),
        &text,
        "site[1].host_names[1]",
        "already claimed by site[0]",
    );
}

#[test]
fn bad_values() {
    let dir = dir_with_pki();
    assert_error(
        dir.path(),
        &BASIC.replace(
            "Ssl, SslNegotiateCert, SslRequireCert",
            "Ssl, SslRequiredCert",
        ),
        "site[0].ssl_flags",
        "unknown flag `SslRequiredCert`",
    );
    assert_error(
        dir.path(),
        &BASIC.replace("client_ca = [\"ca.crt\"]", "client_ca = []"),
        "site[0].client_ca",
        "needs client_ca",
    );
    assert_error(
        dir.path(),
        &BASIC.replace("http://{backend}", "ftp://example.test"),
        "site[0].backend",
        "only http:// and https://",
    );
    assert_error(
        dir.path(),
        &BASIC.replace("listen = [\"127.0.0.1:0\"]", "listen = [\"localhost\"]"),
        "server.listen[0]",
        "not an IP:port",
    );
    assert_error(
        dir.path(),
        &BASIC.replace("path = \"/public\"", "path = \"/public/../..\""),
        "site[0].location[0].path",
        "climbs above",
    );
    assert_error(
        dir.path(),
        &BASIC.replace("\"server.crt\"", "\"IMPORT-PLACEHOLDER(--certificate)\""),
        "site[0].certificate",
        "re-run import-iis with --certificate FILE",
    );
    let m2o = format!(
        "{BASIC}\n[[site.iis_client_certificate_mapping_authentication.many_to_one_mappings]]\n\
         name = \"x\"\nuser_name = \"u\"\nrules = [{{ certificate_field = \"Subject\", \
         certificate_sub_field = \"Shoe size\", match_criteria = \"42\" }}]\n"
    )
    .replace(
        "[[site.location]]\npath = \"/public\"\nssl_flags = \"Ssl\"\nanonymous_authentication = true\n",
        "",
    );
    assert_error(
        dir.path(),
        &m2o,
        "site[0].iis_client_certificate_mapping_authentication.many_to_one_mappings[0].rules[0].certificate_sub_field",
        "Shoe size",
    );
}

#[test]
fn check_reports_every_error_and_exits_non_zero() {
    let dir = dir_with_pki();
    let text = BASIC
        .replace("\"server.crt\"", "\"missing.crt\"")
        .replace("Ssl, SslNegotiateCert, SslRequireCert", "Ssl, Bogus")
        .replace("{backend}", "127.0.0.1:9");
    let path = dir.path().join("certgate.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("site[0].certificate"), "{stderr}");
    assert!(stderr.contains("site[0].ssl_flags"), "{stderr}");
    assert!(stderr.contains("2 error(s)"), "{stderr}");

    std::fs::write(&path, BASIC.replace("{backend}", "127.0.0.1:9")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK (1 site(s)"));
}

#[test]
fn shipped_example_configs_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            toml::from_str::<certgate::config::raw::RawConfig>(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen > 0);
    // The main example is also valid as a whole once its files exist.
    let files = dir_with_pki();
    let text = std::fs::read_to_string(dir.join("certgate.example.toml")).unwrap();
    let text = text.replace("0.0.0.0:443", "127.0.0.1:0");
    load(files.path(), &text).unwrap_or_else(|e| panic!("{e:#?}"));
}

#[test]
fn unreadable_mapping_passwords_only_matter_where_credentials_are_verified() {
    let dir = dir_with_pki();
    let with_password = BASIC.replace(
        "certificate_file = \"alice.crt\"",
        "certificate_file = \"alice.crt\"\npassword_env = \"CERTGATE_TEST_SURELY_UNSET\"",
    );
    // No credential check anywhere: the password is never needed.
    load(dir.path(), &with_password).unwrap();
    // A scope that binds as the user needs it.
    let directory = "\n[directory]\nurls = [\"ldaps://127.0.0.1:636\"]\nca = \"ca.crt\"\n\
        bind_dn = \"svc@example.test\"\nbind_password_file = \"ca.crt\"\nbase_dn = \"DC=example,DC=test\"\n";
    let text = with_password.replacen("[[site]]", &format!("{directory}\n[[site]]"), 1)
        + "\n[site.directory]\nverify = \"credentials\"\n";
    let text = text.replace(
        "[[site.location]]\npath = \"/public\"\nssl_flags = \"Ssl\"\nanonymous_authentication = true\n",
        "",
    );
    assert_error(
        dir.path(),
        &text,
        "site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[0].password_env",
        "`CERTGATE_TEST_SURELY_UNSET` is not set; verify = \"credentials\" needs",
    );
}

/// Mapping entries in the canonical form (read by the loader's fast path) still name their
/// certificate and password files for the watcher, and a duplicate entry's unreadable password
/// is not reported (its user is not indexed), while a readable one is used.
#[test]
fn fast_path_mappings_record_files_and_unresolved_passwords() {
    let dir = dir_with_pki();
    std::fs::write(dir.path().join("pw.txt"), "secret\n").unwrap();
    let entries = "\n[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
        user_name = \"EXAMPLE\\\\alice2\"\ncertificate_file = \"alice.crt\"\n\
        password_env = \"CERTGATE_TEST_SURELY_UNSET\"\n\
        \n[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]\n\
        user_name = \"EXAMPLE\\\\bob\"\ncertificate_file = \"bob.crt\"\n\
        password_file = \"pw.txt\"\n";
    let text = BASIC.replace(
        "certificate_file = \"alice.crt\"\nenabled = true\n",
        &format!("certificate_file = \"alice.crt\"\nenabled = true\npassword_file = \"pw.txt\"\n{entries}"),
    );
    // No credential check: only the duplicate is an error.
    let errors = load(dir.path(), &text).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        errors[0].key,
        "site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[1]"
    );
    let unique = text.replace(
        "password_env = \"CERTGATE_TEST_SURELY_UNSET\"",
        "enabled = false\npassword_env = \"CERTGATE_TEST_SURELY_UNSET\"",
    );
    let runtime = load(dir.path(), &unique).unwrap();
    for name in ["certgate.toml", "alice.crt", "bob.crt", "pw.txt"] {
        assert!(
            runtime.files.iter().any(|f| f.ends_with(name)),
            "{name} not in {:?}",
            runtime.files
        );
    }
    // Credentials verified: the disabled and the duplicate entry's passwords do not matter.
    let directory = "\n[directory]\nurls = [\"ldaps://127.0.0.1:636\"]\nca = \"ca.crt\"\n\
        bind_dn = \"svc@example.test\"\nbind_password_file = \"ca.crt\"\nbase_dn = \"DC=example,DC=test\"\n";
    let credentials = |text: &str| {
        (text.replacen("[[site]]", &format!("{directory}\n[[site]]"), 1)
            + "\n[site.directory]\nverify = \"credentials\"\n")
            .replace(
                "[[site.location]]\npath = \"/public\"\nssl_flags = \"Ssl\"\nanonymous_authentication = true\n",
                "",
            )
    };
    load(dir.path(), &credentials(&unique)).unwrap();
    let errors = load(dir.path(), &credentials(&text)).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].reason.contains("already mapped"), "{errors:#?}");
}

/// An IIS-exported `.pfx` serves as the site certificate; its password comes from the
/// environment, and a wrong or missing one is a clear error.
#[tokio::test]
async fn pfx_server_certificates() {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;

    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write(dir.path());
    let key = PrivateKeyDer::from_pem_slice(pki.server.key_pem.as_bytes()).unwrap();
    let chain = PrivateKeyChain::new(
        [1u8; 20].to_vec(),
        PrivateKey::from_der(key.secret_der()).unwrap(),
        [
            Certificate::from_der(pki.server.der.as_ref()).unwrap(),
            Certificate::from_der(pki.ca.der.as_ref()).unwrap(),
        ],
    );
    let mut store = KeyStore::new();
    store.add_entry("server", KeyStoreEntry::PrivateKeyChain(chain));
    std::fs::write(
        dir.path().join("server.pfx"),
        store.writer("s3cret").write().unwrap(),
    )
    .unwrap();

    let text = BASIC.replace("{backend}", "127.0.0.1:9").replace(
        "certificate = \"server.crt\"\nprivate_key = \"server.key\"",
        "pfx = \"server.pfx\"\npfx_password_env = \"CERTGATE_TEST_PFX_PASSWORD\"",
    );
    let path = dir.path().join("certgate.toml");
    std::fs::write(&path, text).unwrap();
    let check = |password: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certgate"));
        cmd.args(["check", "-c"])
            .arg(&path)
            .env_remove("CERTGATE_TEST_PFX_PASSWORD");
        if let Some(p) = password {
            cmd.env("CERTGATE_TEST_PFX_PASSWORD", p);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = check(Some("s3cret"));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = check(Some("wrong"));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("site[0].pfx") && stderr.contains("wrong password"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong\n") && !stderr.contains("s3cret"),
        "password leaked: {stderr}"
    );
    let (code, stderr) = check(None);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("`CERTGATE_TEST_PFX_PASSWORD` is not set"),
        "{stderr}"
    );
}

/// Kerberos `mode = "password"` logs each user on with the mapping's password: at load time,
/// every mapping of such a scope without one is an error naming it (a table row by its file and
/// line); an s4u scope needs none. (A build without the `kerberos` feature refuses the whole
/// section instead: `kerberos::config`'s unit tests.)
#[cfg(feature = "kerberos")]
#[test]
fn kerberos_password_mode_needs_each_mappings_password() {
    let dir = dir_with_pki();
    let pem = std::fs::read_to_string(dir.path().join("bob.crt")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    std::fs::write(
        dir.path().join("mappings.csv"),
        format!("\"userName\",\"certificate\"\n\"EXAMPLE\\bob\",\"{body}\"\n"),
    )
    .unwrap();
    let kerberos = "\n[kerberos]\nrealm = \"EXAMPLE.TEST\"\nprincipal = \"svc-certgate\"\n\
        keytab = \"ca.crt\"\n";
    let text = |mode: &str| {
        BASIC
            .replacen("[[site]]", &format!("{kerberos}\n[[site]]"), 1)
            .replace(
                "one_to_one_certificate_mappings_enabled = true\n",
                "one_to_one_certificate_mappings_enabled = true\n\
                 one_to_one_mappings_file = \"mappings.csv\"\n",
            )
            + &format!(
                "\n[site.backend_kerberos]\nspn = \"HTTP/app.example.test\"\nmode = \"{mode}\"\n"
            )
    };
    let errors = load(dir.path(), &text("password")).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[0]",
            "line 2"
        ],
        "{errors:#?}"
    );
    assert!(
        errors[0]
            .reason
            .contains("no password_env or password_file; backend_kerberos mode = \"password\""),
        "{errors:#?}"
    );
    assert!(errors[0].file.ends_with("certgate.toml"));
    assert!(errors[1].file.ends_with("mappings.csv"), "{errors:#?}");
    assert!(errors[1].reason.contains("no passwordEnv"), "{errors:#?}");
    load(dir.path(), &text("s4u")).unwrap_or_else(|e| panic!("{e:#?}"));
    // `certgate check` says the same and fails.
    std::fs::write(
        dir.path().join("certgate.toml"),
        text("password").replace("{backend}", "127.0.0.1:9"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args(["check", "-c"])
        .arg(dir.path().join("certgate.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("mappings.csv") && stderr.contains("line 2"),
        "{stderr}"
    );
}
