#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::tools::iis_import::{import, netsh::parse};

const DUMP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/iis/netsh-sslcert.txt"
));
const APP_HOST: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/iis/applicationHost.config"
));

fn binding(lines: &str) -> SslCertBinding {
    parse(&format!("    IP:port : 0.0.0.0:443\n{lines}"), "f")
        .unwrap()
        .remove(0)
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

#[test]
fn iis_bindings_are_keyed_as_http_sys_keys_them() {
    let ip = |s: &str| Some(Endpoint::IpPort(s.parse().unwrap()));
    assert_eq!(iis_endpoint("*:443:", None), ip("0.0.0.0:443"));
    assert_eq!(
        iis_endpoint("*:443:www.a.test", Some("0")),
        ip("0.0.0.0:443")
    );
    assert_eq!(
        iis_endpoint("10.0.0.5:8443:", Some("0")),
        ip("10.0.0.5:8443")
    );
    assert_eq!(iis_endpoint("[::1]:443:", None), ip("[::1]:443"));
    assert_eq!(
        iis_endpoint("*:443:WWW.A.test", Some("1")),
        Some(Endpoint::HostnamePort {
            host: "www.a.test".into(),
            port: 443
        })
    );
    assert_eq!(
        iis_endpoint("[::]:443:intranet.a.test", Some("35")),
        Some(Endpoint::Ccs { port: 443 })
    );
    assert_eq!(iis_endpoint("nonsense", None), None);
    assert_eq!(iis_endpoint("*:443:", Some("x")), None);
}

#[test]
fn an_address_binding_falls_back_to_the_wildcard_of_its_port_and_an_sni_one_does_not() {
    let dump = parse(
        "  IP:port : 0.0.0.0:443\n  IP:port : 10.0.0.5:443\n  IP:port : [::]:8443\n  \
         Hostname:port : a.test:443\n",
        "f",
    )
    .unwrap();
    let at = |s: &str| lookup(&Endpoint::IpPort(s.parse().unwrap()), &dump);
    assert_eq!(at("10.0.0.5:443"), Some(1), "exact first");
    assert_eq!(at("10.0.0.6:443"), Some(0), "then 0.0.0.0 of the port");
    assert_eq!(at("[::1]:8443"), Some(2), "[::] for IPv6");
    assert_eq!(at("10.0.0.6:8443"), None, "not across families");
    let sni = |h: &str| {
        lookup(
            &Endpoint::HostnamePort {
                host: h.into(),
                port: 443,
            },
            &dump,
        )
    };
    assert_eq!(sni("a.test"), Some(3));
    assert_eq!(sni("b.test"), None);
}

#[test]
fn verify_client_certificate_revocation_is_check() {
    let r = revocation(&binding(""), &mut Vec::new());
    assert_eq!(r.check.as_deref(), Some("chain"), "http.sys default");
    let r = revocation(
        &binding("  Verify Client Certificate Revocation : Disabled\n"),
        &mut Vec::new(),
    );
    assert_eq!(r.check.as_deref(), Some("none"));
    assert_eq!(r.unknown_status, None, "deny, as IIS");
}

#[test]
fn cached_only_is_carried() {
    let b = binding("  Verify Revocation Using Cached Client Certificate Only : Enabled\n");
    assert_eq!(revocation(&b, &mut Vec::new()).cached_only, Some(true));
    assert_eq!(
        revocation(&binding(""), &mut Vec::new()).cached_only,
        Some(false)
    );
}

#[test]
fn freshness_time_is_seconds_and_only_when_used() {
    let r = revocation(
        &binding("  Revocation Freshness Time : 3600\n"),
        &mut Vec::new(),
    );
    assert_eq!(r.freshness_time, secs(3600));
    let r = revocation(
        &binding("  Use Revocation Freshness Time : Disabled\n  Revocation Freshness Time : 60\n"),
        &mut Vec::new(),
    );
    assert_eq!(r.freshness_time, secs(0));
}

#[test]
fn url_retrieval_timeout_is_milliseconds_zero_is_windows_default_and_it_is_capped() {
    let t = |line: &str, warnings: &mut Vec<String>| {
        revocation(&binding(line), warnings).url_retrieval_timeout
    };
    let mut w = Vec::new();
    assert_eq!(t("  URL Retrieval Timeout : 0\n", &mut w), secs(15));
    assert_eq!(
        t("  URL Retrieval Timeout : 2500\n", &mut w),
        Some(Duration::from_millis(2500))
    );
    assert!(w.is_empty());
    assert_eq!(t("  URL Retrieval Timeout : 600000\n", &mut w), secs(300));
    assert_eq!(w.len(), 1, "{w:?}");
}

fn notes_of(lines: &str, opts: &ImportOptions) -> (Vec<String>, Vec<String>) {
    let (mut w, mut u) = (Vec::new(), Vec::new());
    notes(&binding(lines), "f", "at", opts, &mut w, &mut u);
    (w, u)
}

/// Lines that keep http.sys's behaviour the same as certgate's, so no other note appears.
const QUIET: &str = "  Negotiate Client Certificate : Enabled\n";

#[test]
fn negotiate_client_certificate_disabled_explains_the_difference() {
    let opts = ImportOptions::default();
    assert!(notes_of(QUIET, &opts).0.is_empty());
    let (w, _) = notes_of("  Negotiate Client Certificate : Disabled\n", &opts);
    assert_eq!(w.len(), 1);
    assert!(
        w[0].contains("renegotiation") && w[0].contains("initial handshake"),
        "{w:?}"
    );
}

#[test]
fn ds_mapper_usage_points_at_the_directory_mapping() {
    let (w, _) = notes_of(
        &format!("{QUIET}  DS Mapper Usage : Enabled\n"),
        &ImportOptions::default(),
    );
    assert_eq!(w.len(), 1);
    assert!(
        w[0].contains("[site.directory.certificate_mapping]"),
        "{w:?}"
    );
}

#[test]
fn usage_check_disabled_says_what_certgate_checks() {
    let (w, _) = notes_of(
        &format!("{QUIET}  Usage Check : Disabled\n"),
        &ImportOptions::default(),
    );
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("1.3.6.1.5.5.7.3.2"), "{w:?}");
}

#[test]
fn a_ctl_points_at_client_ca() {
    let lines = format!("{QUIET}  Ctl Identifier : Partners\n  Ctl Store Name : Root\n");
    let (w, _) = notes_of(&lines, &ImportOptions::default());
    assert_eq!(w.len(), 1);
    assert!(
        w[0].contains("'Partners'") && w[0].contains("in client_ca"),
        "{w:?}"
    );
    let opts = ImportOptions {
        client_ca: vec!["ca.crt".into()],
        ..ImportOptions::default()
    };
    assert!(notes_of(&lines, &opts).0[0].contains("--client-ca lists exactly"));
}

#[test]
fn the_certificate_hash_says_what_to_export_unless_a_certificate_was_given() {
    let lines = format!("{QUIET}  Certificate Hash : abc123\n  Certificate Store Name : My\n");
    let (w, _) = notes_of(&lines, &ImportOptions::default());
    assert!(w[0].contains("Cert:\\LocalMachine\\My\\abc123"), "{w:?}");
    let opts = ImportOptions {
        pfx: Some("site.pfx".into()),
        ..ImportOptions::default()
    };
    assert!(notes_of(&lines, &opts).0.is_empty());
}

#[test]
fn other_lines_that_are_set_are_listed_as_untranslated() {
    let lines = format!(
        "{QUIET}  Disable HTTP2 : Set\n  Disable QUIC : Not Set\n  Reject Connections : Disabled\n"
    );
    let (_, u) = notes_of(&lines, &ImportOptions::default());
    assert_eq!(u, ["at: 'Disable HTTP2 : Set' (line 3) not translated"]);
}

#[test]
fn applied_to_applicationhost_config_each_site_gets_its_bindings_settings() {
    let mut imported = import(APP_HOST, &[], &ImportOptions::default()).unwrap();
    let bindings = parse(DUMP, "sslcert.txt").unwrap();
    apply(
        &mut imported,
        &bindings,
        "sslcert.txt",
        &ImportOptions::default(),
    );
    let rev = |name: &str| {
        imported
            .config
            .sites
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .revocation
            .clone()
            .unwrap()
    };
    let contoso = rev("Contoso Site");
    assert_eq!(contoso.check.as_deref(), Some("chain"));
    assert_eq!(contoso.freshness_time, secs(3600));
    assert_eq!(contoso.url_retrieval_timeout, secs(5));
    // 10.0.0.5:8443 has no binding of its own: http.sys uses 0.0.0.0:8443.
    assert_eq!(rev("Fabrikam").check.as_deref(), Some("none"));
    assert_eq!(
        rev("Intranet").cached_only,
        Some(true),
        "Central Certificate Store 443"
    );
    let w = imported.warnings.join("\n");
    assert!(
        w.contains("sslcert.txt:135: IP:port 0.0.0.0:5986 matches no imported site")
            && w.contains("{afebb9ad-9b97-4a91-9ab5-daf4d59122f6} is not IIS's"),
        "{w}"
    );
    assert!(
        w.contains("sslcert.txt:71 (IP:port 0.0.0.0:8443, site 'Fabrikam'): DS Mapper"),
        "{w}"
    );
    assert!(!w.contains("differ"), "{w}");
    assert!(
        imported
            .untranslated
            .iter()
            .any(|u| u.contains("site 'Fabrikam'): 'Disable HTTP2 : Set'")),
        "{:?}",
        imported.untranslated
    );
}

#[test]
fn bindings_of_one_site_with_different_settings_are_reported() {
    let dump = DUMP.replacen(
        "    Revocation Freshness Time    : 3600\n",
        "    Revocation Freshness Time    : 60\n",
        2,
    );
    let dump = dump.replacen(
        "    Revocation Freshness Time    : 60\n",
        "    Revocation Freshness Time    : 3600\n",
        1,
    );
    let mut imported = import(APP_HOST, &[], &ImportOptions::default()).unwrap();
    let bindings = parse(&dump, "f").unwrap();
    apply(&mut imported, &bindings, "f", &ImportOptions::default());
    let w = imported.warnings.join("\n");
    assert!(
        w.contains("Hostname:port www.contoso.test:443, site 'Contoso Site'): its revocation settings differ"),
        "{w}"
    );
    let contoso = &imported
        .config
        .sites
        .iter()
        .find(|s| s.name == "Contoso Site")
        .unwrap();
    assert_eq!(
        contoso.revocation.as_ref().unwrap().freshness_time,
        secs(3600)
    );
}

#[test]
fn alone_every_binding_becomes_a_site_with_its_settings() {
    let bindings = parse(DUMP, "sslcert.txt").unwrap();
    let prepared = prepare_alone(&bindings, "sslcert.txt");
    let opts = ImportOptions {
        app_host_file: prepared.app_host_file.clone(),
        ..ImportOptions::default()
    };
    let mut imported = import(&prepared.app_host, &[], &opts).unwrap();
    apply(&mut imported, &bindings, "sslcert.txt", &opts);
    let names: Vec<&str> = imported
        .config
        .sites
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "contoso.test:443",
            "www.contoso.test:443",
            "0.0.0.0:8443",
            "Central Certificate Store:443",
        ]
    );
    assert_eq!(imported.config.sites[0].host_names, ["contoso.test"]);
    assert!(imported.config.sites.iter().all(|s| s.revocation.is_some()));
    assert_eq!(
        imported.config.server.listen,
        ["0.0.0.0:443", "0.0.0.0:8443"]
    );
    // Another program's binding is not made a site.
    let unused: Vec<&String> = imported
        .warnings
        .iter()
        .filter(|w| w.contains("matches no imported site"))
        .collect();
    assert_eq!(unused.len(), 1, "{unused:?}");
    assert!(unused[0].contains("0.0.0.0:5986"));
}
