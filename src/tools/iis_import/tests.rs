//! Importer tests against realistic IIS files in `tests/data/iis/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::config::raw::RawManyToOne;
use crate::mapping::many_to_one::ManyToOneSet;

const APP_HOST: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/iis/applicationHost.config"
));
const CONTOSO_APP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/iis/contoso-app.web.config"
));
const FABRIKAM_API: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/iis/fabrikam-api.web.config"
));

fn web_configs() -> Vec<WebConfigInput> {
    vec![
        WebConfigInput {
            file: "contoso-app/web.config".into(),
            content: CONTOSO_APP.into(),
            site_path: "Contoso Site/app".into(),
        },
        WebConfigInput {
            file: "fabrikam-api/web.config".into(),
            content: FABRIKAM_API.into(),
            site_path: "Fabrikam/api".into(),
        },
    ]
}

fn full_import() -> Imported {
    import(APP_HOST, &web_configs(), &ImportOptions::default()).unwrap()
}

fn site<'a>(imported: &'a Imported, name: &str) -> &'a RawSite {
    imported
        .config
        .sites
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no site {name}"))
}

fn location<'a>(site: &'a RawSite, path: &str) -> &'a RawLocation {
    site.locations
        .iter()
        .find(|l| l.path == path)
        .unwrap_or_else(|| panic!("no location {path} in {}", site.name))
}

fn names(m: &RawIisMapping) -> Vec<&str> {
    m.many_to_one_mappings
        .iter()
        .map(|m| m.name.as_str())
        .collect()
}

fn mapper(m: &Option<RawIisMapping>) -> &RawIisMapping {
    m.as_ref().unwrap()
}

fn mapping<'a>(m: &'a RawIisMapping, name: &str) -> &'a RawManyToOne {
    m.many_to_one_mappings
        .iter()
        .find(|x| x.name == name)
        .unwrap()
}

fn has(items: &[String], needle: &str) -> bool {
    items.iter().any(|i| i.contains(needle))
}

#[test]
fn imports_sites_with_https_bindings() {
    let imported = full_import();
    let sites: Vec<&str> = imported
        .config
        .sites
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(sites, vec!["Contoso Site", "Fabrikam", "Intranet"]);
    assert!(has(
        &imported.untranslated,
        "site 'Default Web Site' has no https binding"
    ));
    let contoso = site(&imported, "Contoso Site");
    assert_eq!(contoso.host_names, vec!["contoso.test", "www.contoso.test"]);
    assert!(has(
        &imported.untranslated,
        "site 'Contoso Site': http binding '*:80:contoso.test' not imported"
    ));
    assert_eq!(
        imported.config.server.listen,
        vec!["0.0.0.0:443", "10.0.0.5:8443", "[::]:443"]
    );
    // Fabrikam's binding has no host name: IIS serves it every name on its address.
    assert!(site(&imported, "Fabrikam").host_names.is_empty());
    assert_eq!(
        imported.config.server.default_site.as_deref(),
        Some("Fabrikam")
    );
    assert!(has(&imported.warnings, "'10.0.0.5:8443:' has no host name"));
}

#[test]
fn site_level_values_are_effective() {
    let imported = full_import();
    let contoso = site(&imported, "Contoso Site");
    assert_eq!(
        contoso.ssl_flags.as_deref(),
        Some("Ssl, SslNegotiateCert, SslRequireCert")
    );
    assert_eq!(contoso.anonymous_authentication, Some(false));
    let m = mapper(&contoso.iis_client_certificate_mapping_authentication);
    assert!(m.enabled);
    assert_eq!(m.logon_method.as_deref(), Some("Network"));
    assert_eq!(m.default_logon_domain.as_deref(), Some("CONTOSO"));
    assert_eq!(m.one_to_one_certificate_mappings_enabled, Some(true));
    // The server-level Deny mapping is inherited and stays first.
    assert_eq!(
        names(m),
        vec![
            "Block contractors",
            "Contoso HR",
            "Contoso Sales",
            "Legacy partners"
        ]
    );
    let block = mapping(m, "Block contractors");
    assert_eq!(block.permission_mode.as_deref(), Some("Deny"));
    assert_eq!(
        block.password_env, None,
        "[enc:AesProvider::enc] is no password"
    );
    assert_eq!(block.rules[0].compare_case_sensitive, Some(false));
    assert_eq!(
        mapping(m, "Contoso HR").rules[1].compare_case_sensitive,
        Some(true),
        "IIS default is case-sensitive and is emitted explicitly"
    );
    assert_eq!(mapping(m, "Legacy partners").enabled, Some(false));
    assert_eq!(m.one_to_one_mappings.len(), 2);
    assert!(
        m.one_to_one_mappings[0]
            .certificate
            .as_deref()
            .unwrap()
            .starts_with("MIIBnTCCAUOg")
    );

    // Server level: anonymous on, sslFlags None; `<location path="">` sets Ssl for all sites.
    let intranet = site(&imported, "Intranet");
    assert_eq!(
        intranet.ssl_flags.as_deref(),
        Some("Ssl, SslNegotiateCert, SslRequireCert"),
        "numeric sslFlags=104"
    );
    let m = mapper(&intranet.iis_client_certificate_mapping_authentication);
    assert_eq!(m.logon_method.as_deref(), Some("Network"), "logonMethod=2");
    assert_eq!(m.one_to_one_certificate_mappings_enabled, Some(false));
    let domain_users = mapping(m, "Domain users");
    assert_eq!(domain_users.permission_mode.as_deref(), Some("Allow"));
    assert_eq!(domain_users.rules[0].certificate_field, "Issuer");
    assert_eq!(domain_users.rules[0].compare_case_sensitive, Some(false));
}

#[test]
fn nested_locations_merge_collections_in_order() {
    let imported = full_import();
    let contoso = site(&imported, "Contoso Site");

    // Site/a: <remove name="Contoso Sales"/> then <add name="A team">, appended last.
    let a = location(contoso, "/a");
    assert_eq!(a.ssl_flags.as_deref(), Some("Ssl, SslNegotiateCert"));
    assert_eq!(a.anonymous_authentication, Some(false));
    let m = mapper(&a.iis_client_certificate_mapping_authentication);
    assert_eq!(
        names(m),
        vec![
            "Block contractors",
            "Contoso HR",
            "Legacy partners",
            "A team"
        ]
    );
    assert!(m.enabled, "enabled is inherited attribute by attribute");
    assert_eq!(m.logon_method.as_deref(), Some("Network"));
    let a_team = mapping(m, "A team");
    assert_eq!(a_team.rules.len(), 1, "the rule <remove> dropped CN=*");
    assert_eq!(a_team.rules[0].match_criteria, "A*");
    assert_eq!(m.one_to_one_mappings.len(), 2);

    // Site/a/b: <clear/> in both collections; sslFlags inherited from Site/a.
    let b = location(contoso, "/a/b");
    assert_eq!(b.ssl_flags.as_deref(), Some("Ssl, SslNegotiateCert"));
    let m = mapper(&b.iis_client_certificate_mapping_authentication);
    assert_eq!(names(m), vec!["B only"]);
    assert!(m.one_to_one_mappings.is_empty());

    // web.config at Site/app appends after the site's entries.
    let app = location(contoso, "/app");
    let m = mapper(&app.iis_client_certificate_mapping_authentication);
    assert_eq!(
        names(m),
        vec![
            "Block contractors",
            "Contoso HR",
            "Contoso Sales",
            "Legacy partners",
            "App only"
        ]
    );

    // Site/legacy only repeats anonymous=false and enables an untranslated module: no location.
    assert!(!contoso.locations.iter().any(|l| l.path == "/legacy"));
    assert!(has(
        &imported.untranslated,
        "site 'Contoso Site' path /legacy: windowsAuthentication is enabled"
    ));
    let paths: Vec<&str> = contoso.locations.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(paths, vec!["/a", "/app", "/a/b"]);
}

#[test]
fn clear_drops_server_level_entries() {
    let imported = full_import();
    let fabrikam = site(&imported, "Fabrikam");
    let m = mapper(&fabrikam.iis_client_certificate_mapping_authentication);
    assert_eq!(names(m), vec!["Fabrikam partners"]);
    assert_eq!(fabrikam.ssl_flags.as_deref(), Some("Ssl, SslNegotiateCert"));
    let api = location(fabrikam, "/api");
    let m = mapper(&api.iis_client_certificate_mapping_authentication);
    assert_eq!(m.many_to_one_certificate_mappings_enabled, Some(false));
    assert_eq!(names(m), vec!["Fabrikam partners"]);
}

#[test]
fn untranslated_items_are_listed() {
    let imported = full_import();
    let u = &imported.untranslated;
    for needle in [
        "Ssl128 dropped",
        "site 'Fabrikam' path /: basicAuthentication is enabled",
        "site 'Intranet' path /: clientCertificateMappingAuthentication (the Active Directory \
         mapper) is enabled",
        "binding '[::]:443:intranet.contoso.test' sslFlags 2: Central Certificate Store",
        "binding '[::]:443:intranet.contoso.test' sslFlags 32: TLS 1.3",
        "<location path=\"Retired Site\"> matches no site",
        "system.applicationHost/{applicationPools, webLimits} not imported",
        "attribute lockItem=\"true\" not translated",
        "attribute notes=\"from the IIS 6 metabase\" not translated (unknown attribute)",
        "anonymousAuthentication@userName is not translated",
        "server-level system.webServer sections not imported (they apply to every site): \
         defaultDocument, globalModules, handlers, security/requestFiltering",
        "<location path=\"Contoso Site/legacy\">: system.webServer sections not imported: \
         defaultDocument",
        "web.config for 'Contoso Site/app': system.webServer sections not imported: \
         defaultDocument",
    ] {
        assert!(has(u, needle), "missing {needle:?} in {u:#?}");
    }
    // Nothing the importer did translate shows up as untranslated.
    assert!(
        !has(u, "iisClientCertificateMappingAuthentication"),
        "{u:#?}"
    );
}

#[test]
fn encrypted_password_warning_lists_every_mapping() {
    let imported = full_import();
    let warning = imported
        .warnings
        .iter()
        .find(|w| w.contains("encrypted with the IIS host's machine key"))
        .unwrap();
    assert!(warning.starts_with("5 mapping password(s)"), "{warning}");
    for needle in [
        "CERTGATE_PW_CONTOSO_SITE_1 <- site 'Contoso Site', one-to-one user 'CONTOSO\\svc-alice'",
        "site 'Contoso Site', many-to-one mapping 'Contoso HR' (user 'CONTOSO\\svc-hr')",
        "many-to-one mapping 'Contoso Sales'",
        "many-to-one mapping 'A team'",
        "CERTGATE_PW_FABRIKAM_1 <- site 'Fabrikam', many-to-one mapping 'Fabrikam partners'",
    ] {
        assert!(warning.contains(needle), "missing {needle:?} in {warning}");
    }
    assert!(!warning.contains("Block contractors"), "{warning}");

    // The same mapping keeps its variable in every location that inherits it.
    let contoso = site(&imported, "Contoso Site");
    let env = |m: &Option<RawIisMapping>| {
        mapping(mapper(m), "Contoso HR")
            .password_env
            .clone()
            .unwrap()
    };
    let at_site = env(&contoso.iis_client_certificate_mapping_authentication);
    let at_a = env(&location(contoso, "/a").iis_client_certificate_mapping_authentication);
    assert_eq!(at_site, at_a);
    assert!(at_site.starts_with("CERTGATE_PW_CONTOSO_SITE_"));
}

#[test]
fn plain_text_passwords_are_not_copied() {
    let imported = full_import();
    let text = to_toml(&imported).unwrap();
    assert!(!text.contains("Passw0rd!"));
    assert!(!text.contains("[enc:AesProvider:"));
    assert!(!text.contains("57686f61"));
    let warning = imported
        .warnings
        .iter()
        .find(|w| w.contains("plain text"))
        .unwrap();
    assert!(
        warning.contains("one-to-one user 'CONTOSO\\svc-broken'"),
        "{warning}"
    );
    let contoso = site(&imported, "Contoso Site");
    let broken =
        &mapper(&contoso.iis_client_certificate_mapping_authentication).one_to_one_mappings[1];
    assert!(
        broken
            .password_env
            .as_deref()
            .unwrap()
            .starts_with("CERTGATE_PW_")
    );
}

#[test]
fn corrupt_one_to_one_certificate_is_warned_and_kept() {
    let imported = full_import();
    let corrupt: Vec<&String> = imported
        .warnings
        .iter()
        .filter(|w| w.contains("does not decode"))
        .collect();
    assert_eq!(corrupt.len(), 1, "{corrupt:#?}");
    assert!(corrupt[0].contains("'CONTOSO\\svc-broken'"));
    assert!(corrupt[0].contains("0x80093102"));
    let contoso = site(&imported, "Contoso Site");
    let m = mapper(&contoso.iis_client_certificate_mapping_authentication);
    assert!(m.one_to_one_mappings[1].certificate.is_some());
}

#[test]
fn locked_section_in_web_config_is_warned() {
    let imported = full_import();
    let locked: Vec<&String> = imported
        .warnings
        .iter()
        .filter(|w| w.contains("0x80070021"))
        .collect();
    assert_eq!(locked.len(), 1, "{locked:#?}");
    assert!(locked[0].starts_with("fabrikam-api/web.config:"));
    assert!(locked[0].contains("iisClientCertificateMappingAuthentication"));
}

#[test]
fn pitfall_warnings() {
    let xml = r#"<configuration>
  <system.applicationHost><sites>
    <site name="S" id="1"><bindings><binding protocol="https" bindingInformation="*:443:s.test"/></bindings></site>
  </sites></system.applicationHost>
  <location path="S"><system.webServer><security>
    <access sslFlags="Ssl" />
    <authentication>
      <anonymousAuthentication enabled="true" />
      <iisClientCertificateMappingAuthentication enabled="true" />
    </authentication>
  </security></system.webServer></location>
</configuration>"#;
    let imported = import(xml, &[], &ImportOptions::default()).unwrap();
    assert!(has(&imported.warnings, "sslFlags lacks SslNegotiateCert"));
    assert!(has(
        &imported.warnings,
        "anonymous authentication is enabled"
    ));
}

#[test]
fn placeholders_without_flags() {
    let imported = full_import();
    for s in &imported.config.sites {
        assert_eq!(
            s.certificate.as_deref(),
            Some("IMPORT-PLACEHOLDER(--certificate)")
        );
        assert_eq!(
            s.private_key.as_deref(),
            Some("IMPORT-PLACEHOLDER(--private-key)")
        );
        assert_eq!(s.client_ca, vec!["IMPORT-PLACEHOLDER(--client-ca)"]);
        assert_eq!(s.backend, "IMPORT-PLACEHOLDER(--backend)");
        assert_eq!(s.pfx, None);
    }
    assert!(has(
        &imported.warnings,
        "values for --certificate, --private-key, --client-ca, --backend"
    ));
}

#[test]
fn flags_replace_placeholders() {
    let opts = ImportOptions {
        listen: vec!["127.0.0.1:8443".into()],
        certificate: Some("/etc/certgate/site.pem".into()),
        private_key: Some("/etc/certgate/site.key".into()),
        client_ca: vec![
            "/etc/certgate/ca1.pem".into(),
            "/etc/certgate/ca2.pem".into(),
        ],
        backend: Some("http://127.0.0.1:8080".into()),
        ..ImportOptions::default()
    };
    let imported = import(APP_HOST, &web_configs(), &opts).unwrap();
    let text = to_toml(&imported).unwrap();
    assert!(!text.contains(PLACEHOLDER_PREFIX), "{text}");
    assert_eq!(imported.config.server.listen, vec!["127.0.0.1:8443"]);
    let s = &imported.config.sites[0];
    assert_eq!(s.client_ca.len(), 2);
    assert_eq!(s.backend, "http://127.0.0.1:8080");

    let pfx = ImportOptions {
        pfx: Some("/etc/certgate/site.pfx".into()),
        ..opts
    };
    let imported = import(APP_HOST, &[], &pfx).unwrap();
    let s = &imported.config.sites[0];
    assert_eq!(s.pfx.as_deref(), Some("/etc/certgate/site.pfx"));
    assert_eq!(s.certificate, None);
    assert_eq!(s.private_key, None);
}

#[test]
fn site_filter() {
    let opts = ImportOptions {
        sites: vec!["fabrikam".into(), "Intranet".into(), "Fabrikam".into()],
        ..ImportOptions::default()
    };
    let imported = import(APP_HOST, &web_configs(), &opts).unwrap();
    let sites: Vec<&str> = imported
        .config
        .sites
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(sites, vec!["Fabrikam", "Intranet"]);
    assert_eq!(
        imported.config.server.listen,
        vec!["10.0.0.5:8443", "[::]:443"]
    );
    assert!(has(
        &imported.warnings,
        "contoso-app/web.config: applies to site 'Contoso Site', which is not imported"
    ));

    let opts = ImportOptions {
        sites: vec!["Default Web Site".into()],
        ..ImportOptions::default()
    };
    let imported = import(APP_HOST, &[], &opts).unwrap();
    assert_eq!(imported.config.sites[0].name, "Default Web Site");
    assert!(imported.config.server.listen.is_empty());
    assert!(has(&imported.warnings, "imported because --site names it"));

    let err = import(
        APP_HOST,
        &[],
        &ImportOptions {
            sites: vec!["Northwind".into()],
            ..ImportOptions::default()
        },
    )
    .unwrap_err();
    match err {
        ImportError::UnknownSite { name, known } => {
            assert_eq!(name, "Northwind");
            assert!(known.contains("Contoso Site"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn web_config_for_unknown_site_is_an_error() {
    let wc = WebConfigInput::from_arg("w.config=Northwind/app", CONTOSO_APP.into()).unwrap();
    let err = import(APP_HOST, &[wc], &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::UnknownSite { .. }), "{err}");
}

#[test]
fn malformed_xml_reports_file_line_and_column() {
    let xml = "<configuration>\n  <location path=\"S\">\n    <system.webServer>\n  </location>\n</configuration>\n";
    let err = import(xml, &[], &ImportOptions::default()).unwrap_err();
    match &err {
        ImportError::Xml {
            file, line, column, ..
        } => {
            assert_eq!(file, "applicationHost.config");
            assert_eq!((*line, *column), (4, 3));
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string()
            .starts_with("applicationHost.config:4:3: malformed XML")
    );

    let broken_web_config = WebConfigInput {
        file: "app/web.config".into(),
        content: "<configuration>\n<system.webServer>\n<security a=\"1\" a=\"2\"/>\n</system.webServer>\n</configuration>\n".into(),
        site_path: "Contoso Site/app".into(),
    };
    let err = import(APP_HOST, &[broken_web_config], &ImportOptions::default()).unwrap_err();
    assert!(
        matches!(&err, ImportError::Xml { file, line: 3, .. } if file == "app/web.config"),
        "{err}"
    );
}

fn small(location_body: &str) -> String {
    format!(
        r#"<configuration>
<system.applicationHost><sites>
<site name="S" id="1"><bindings><binding protocol="https" bindingInformation="*:443:s.test"/></bindings></site>
</sites></system.applicationHost>
<location path="S"><system.webServer><security><authentication>
<iisClientCertificateMappingAuthentication enabled="true">
<manyToOneMappings>
<add name="Sales" userName="u"><rules><add certificateField="Subject" certificateSubField="OU" matchCriteria="Sales"/></rules></add>
</manyToOneMappings>
</iisClientCertificateMappingAuthentication>
</authentication></security></system.webServer></location>
<location path="S/sub"><system.webServer><security><authentication>
<iisClientCertificateMappingAuthentication>
{location_body}
</iisClientCertificateMappingAuthentication>
</authentication></security></system.webServer></location>
</configuration>"#
    )
}

#[test]
fn duplicate_keys_after_merge_are_errors() {
    // IIS collection keys are case-insensitive unless the schema says otherwise.
    let xml = small(
        r#"<manyToOneMappings><add name="SALES" userName="v"><rules><add certificateField="Subject" certificateSubField="OU" matchCriteria="x"/></rules></add></manyToOneMappings>"#,
    );
    let err = import(&xml, &[], &ImportOptions::default()).unwrap_err();
    match &err {
        ImportError::DuplicateKey {
            line,
            scope,
            collection,
            key,
            ..
        } => {
            assert_eq!(*line, 14);
            assert_eq!(scope, "<location path=\"S/sub\">");
            assert_eq!(*collection, "manyToOneMappings");
            assert_eq!(key, "SALES");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("0x800700b7"));

    // After <remove>, adding the same name again is fine.
    let xml = small(
        r#"<manyToOneMappings><remove name="sales"/><add name="Sales" userName="v"><rules><add certificateField="Subject" certificateSubField="OU" matchCriteria="x"/></rules></add></manyToOneMappings>"#,
    );
    let imported = import(&xml, &[], &ImportOptions::default()).unwrap();
    let sub = location(&imported.config.sites[0], "/sub");
    let m = mapper(&sub.iis_client_certificate_mapping_authentication);
    assert_eq!(m.many_to_one_mappings[0].user_name, "v");

    // Duplicate rules inside one mapping.
    let xml = small(
        r#"<manyToOneMappings><add name="Other" userName="v"><rules>
<add certificateField="Subject" certificateSubField="OU" matchCriteria="x"/>
<add certificateField="subject" certificateSubField="OU" matchCriteria="x" compareCaseSensitive="true"/>
</rules></add></manyToOneMappings>"#,
    );
    let err = import(&xml, &[], &ImportOptions::default()).unwrap_err();
    assert!(
        matches!(
            &err,
            ImportError::DuplicateKey {
                collection: "rules",
                line: 16,
                ..
            }
        ),
        "{err}"
    );

    // Duplicate one-to-one certificates (whitespace does not make them different).
    let xml = small(
        r#"<oneToOneMappings><add userName="a" certificate="QUJD"/><add userName="b" certificate=" QU JD "/></oneToOneMappings>"#,
    );
    let err = import(&xml, &[], &ImportOptions::default()).unwrap_err();
    assert!(
        matches!(
            &err,
            ImportError::DuplicateKey {
                collection: "oneToOneMappings",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn invalid_values_are_errors_with_positions() {
    let cases = [
        (
            r#"<manyToOneMappings><add name="X" userName="u" enabled="yes"/></manyToOneMappings>"#,
            "enabled=\"yes\" is not a boolean",
        ),
        (
            r#"<manyToOneMappings><add name="X" userName="u" permissionMode="Maybe"/></manyToOneMappings>"#,
            "permissionMode=\"Maybe\" is not one of Allow, Deny",
        ),
        (
            r#"<manyToOneMappings><add userName="u"/></manyToOneMappings>"#,
            "lacks the required attribute 'name'",
        ),
        (
            r#"<manyToOneMappings><add name="X" userName="u"><rules><add certificateField="SAN" certificateSubField="CN" matchCriteria="x"/></rules></add></manyToOneMappings>"#,
            "certificateField=\"SAN\" is not one of Subject, Issuer",
        ),
        (
            r#"<oneToOneMappings><add userName="u"/></oneToOneMappings>"#,
            "lacks the required attribute 'certificate'",
        ),
    ];
    for (body, message) in cases {
        let err = import(&small(body), &[], &ImportOptions::default()).unwrap_err();
        match &err {
            ImportError::InvalidConfig { line, .. } => assert_eq!(*line, 14, "{err}"),
            other => panic!("{body}: {other}"),
        }
        assert!(err.to_string().contains(message), "{err}");
    }
}

#[test]
fn imported_many_to_one_mappings_compile() {
    let imported = full_import();
    for (i, s) in imported.config.sites.iter().enumerate() {
        let scopes = std::iter::once(&s.iis_client_certificate_mapping_authentication).chain(
            s.locations
                .iter()
                .map(|l| &l.iis_client_certificate_mapping_authentication),
        );
        for m in scopes.flatten() {
            ManyToOneSet::compile(&m.many_to_one_mappings, &format!("site[{i}]")).unwrap();
        }
    }
}

#[test]
fn toml_round_trip() {
    let imported = full_import();
    let text = to_toml(&imported).unwrap();
    assert!(text.starts_with("# Generated by `certgate import-iis`"));
    assert!(text.contains("# - "));
    // id, log_file and http_errors are the W3C log and error page keys (see `extras`).
    let parsed: RawConfig = toml::from_str(&super::extras::without_extras(&text)).unwrap();
    assert_eq!(
        toml::to_string_pretty(&parsed).unwrap(),
        toml::to_string_pretty(&imported.config).unwrap()
    );
    assert_eq!(parsed.sites.len(), 3);
    assert_eq!(parsed.sites[0].locations.len(), 3);
}

#[test]
fn placeholder_form() {
    assert_eq!(placeholder("--backend"), "IMPORT-PLACEHOLDER(--backend)");
    assert!(placeholder("--pfx").starts_with(PLACEHOLDER_PREFIX));
}

#[test]
fn control_characters_in_warnings_stay_valid_toml_comments() {
    // Found by the iis_import fuzz target: an attribute value with a control character was
    // quoted into a warning and made the written TOML unreadable.
    let mut imported = full_import();
    imported
        .untranslated
        .push("attribute notes=\"a\u{1}b\rc\u{7f}\td\" not translated".to_owned());
    let text = to_toml(&imported).unwrap();
    assert!(text.contains("a\\u{1}b\\u{d}c\\u{7f}\td"), "{text}");
    let parsed: Result<toml::Value, _> = toml::from_str(&text);
    assert!(parsed.is_ok(), "{parsed:?}");
}
