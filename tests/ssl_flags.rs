//! `sslFlags` has one parser: the value `ssl_flags` accepts in certgate's TOML is exactly the
//! value `import-iis` accepts in IIS's XML, and a number with bits IIS does not define (such as
//! `"1"`, which once loaded silently as `None` and turned client certificates off) is an error
//! naming the key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use certgate::config::{ConfigError, Runtime};
use certgate::iis_import::{ImportOptions, import};
use certgate::tls::server::ResumptionKeys;
use support::{BASIC, Pki};

fn load(dir: &Path, text: &str) -> Result<Runtime, Vec<ConfigError>> {
    let path = dir.join("certgate.toml");
    std::fs::write(&path, text.replace("{backend}", "127.0.0.1:9")).unwrap();
    Runtime::load(&path, &ResumptionKeys::default()).map_err(|e| e.0)
}

/// BASIC with the site's and the `/public` location's `ssl_flags` replaced.
fn config(site: &str, location: &str) -> String {
    BASIC
        .replace(
            "ssl_flags = \"Ssl, SslNegotiateCert, SslRequireCert\"",
            &format!("ssl_flags = \"{site}\""),
        )
        .replace(
            "ssl_flags = \"Ssl\"\nanonymous",
            &format!("ssl_flags = \"{location}\"\nanonymous"),
        )
}

fn app_host(flags: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <system.applicationHost>
    <sites>
      <site name="S" id="1">
        <bindings><binding protocol="https" bindingInformation="*:443:s.test" /></bindings>
      </site>
    </sites>
  </system.applicationHost>
  <location path="S">
    <system.webServer><security><access sslFlags="{flags}" /></security></system.webServer>
  </location>
</configuration>"#
    )
}

#[test]
fn undefined_numeric_bits_are_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    Pki::new().write(dir.path());
    let errors = load(dir.path(), &config("1", "Ssl")).unwrap_err();
    let e = errors
        .iter()
        .find(|e| e.key == "site[0].ssl_flags")
        .unwrap_or_else(|| panic!("no error at site[0].ssl_flags: {errors:#?}"));
    assert!(e.reason.contains("bits IIS does not define"), "{e}");

    let errors = load(dir.path(), &config("104", "2")).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].key, "site[0].location[0].ssl_flags");

    // Defined numbers still load, with the same meaning as their names.
    let runtime = load(dir.path(), &config("104", "8")).unwrap();
    let site = &runtime.sites[0];
    assert!(site.scope_for("/").ssl_flags.require_cert);
    let public = site.scope_for("/public");
    assert!(public.ssl_flags.ssl && !public.ssl_flags.negotiate_cert);
}

#[test]
fn config_and_import_accept_exactly_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    Pki::new().write(dir.path());
    let mut values: Vec<String> = (0..=520).map(|n| n.to_string()).collect();
    values.extend(
        [
            "None",
            "Ssl",
            "ssl, sslnegotiatecert",
            "Ssl,SslRequireCert",
            "Ssl, Ssl128",
            "SslMapCert",
            "Ssl, SslRequiredCert",
            "Ssl;SslNegotiateCert",
            "-8",
            "4294967296",
            "0x68",
        ]
        .map(str::to_owned),
    );
    let opts = ImportOptions::default();
    for value in &values {
        let imported = import(&app_host(value), &[], &opts);
        // The location's value only, so site-level checks cannot mask a difference.
        let loaded = load(dir.path(), &config("Ssl, SslNegotiateCert", value));
        assert_eq!(
            imported.is_ok(),
            loaded.is_ok(),
            "sslFlags=\"{value}\": import {:?}, config {:?}",
            imported.as_ref().err().map(ToString::to_string),
            loaded.as_ref().err()
        );
        if let Err(e) = imported {
            assert!(e.to_string().contains("sslFlags"), "{e}");
        }
    }
}
