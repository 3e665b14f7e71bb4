//! `certgate import-iis` carries the site id, `<logFile>` (over `<siteDefaults>`) and the
//! `<httpErrors>` entries for 401.x/403.x, in the keys of the W3C log and error page features:
//! `id`, `[site.log_file]`, `[site.http_errors]` and `[[site.http_errors.error]]`.
//!
//! These tests read the emitted TOML as a plain TOML value. Loading it with the proxy (the
//! load-equivalence test) needs the W3C log and error page keys in the loader: add it once that
//! branch is merged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use certgate::iis_import::{ImportOptions, import, to_toml};

const APP_HOST: &str = include_str!("data/iis/logging-and-errors.applicationHost.config");

fn imported() -> (toml::Value, Vec<String>, Vec<String>) {
    let imported = import(
        APP_HOST,
        &[],
        &ImportOptions {
            app_host_file: "applicationHost.config".into(),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    let text = to_toml(&imported).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (value, imported.warnings, imported.untranslated)
}

fn site<'a>(config: &'a toml::Value, name: &str) -> &'a toml::Value {
    config["site"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no site {name}"))
}

#[test]
fn site_ids_and_log_files_over_site_defaults() {
    let (config, warnings, untranslated) = imported();
    let contoso = site(&config, "Contoso Site");
    assert_eq!(contoso["id"].as_integer(), Some(2));
    let log = contoso["log_file"].as_table().unwrap();
    assert_eq!(log["enabled"].as_bool(), Some(true));
    assert_eq!(log["directory"].as_str(), Some(r"D:\logs"));
    assert_eq!(
        log["log_ext_file_flags"].as_str(),
        Some(
            "Date, Time, ClientIP, UserName, SiteName, ServerIP, Method, UriStem, UriQuery, \
             HttpStatus, Win32Status, TimeTaken, ServerPort, UserAgent, Referer, Host, HttpSubStatus"
        )
    );
    assert_eq!(log["period"].as_str(), Some("Hourly"));
    assert_eq!(log["local_time_rollover"].as_bool(), Some(true));
    assert_eq!(log.len(), 5, "{log:?}");

    // Only enabled is the site's own; the directory comes from <siteDefaults>.
    let fabrikam = site(&config, "Fabrikam");
    assert_eq!(fabrikam["id"].as_integer(), Some(3));
    let log = fabrikam["log_file"].as_table().unwrap();
    assert_eq!(log["enabled"].as_bool(), Some(false));
    assert_eq!(
        log["directory"].as_str(),
        Some(r"%SystemDrive%\inetpub\logs\LogFiles")
    );
    assert!(!log.contains_key("period"));

    // NCSA is not W3C: nothing emitted, and said so.
    let legacy = site(&config, "Legacy");
    assert_eq!(legacy["id"].as_integer(), Some(7));
    assert!(legacy.get("log_file").is_none());
    assert!(
        untranslated
            .iter()
            .any(|u| u.contains("site 'Legacy': <logFile logFormat=\"NCSA\">")),
        "{untranslated:#?}"
    );
    // Windows directories are written as is, with a warning naming them.
    for dir in [r"D:\logs", r"%SystemDrive%\inetpub\logs\LogFiles"] {
        assert!(
            warnings.iter().any(|w| w.contains(&format!(
                "log_file.directory \"{dir}\" is IIS's Windows path"
            ))),
            "{warnings:#?}"
        );
    }
}

#[test]
fn http_errors_for_401_and_403_are_carried() {
    let (config, warnings, untranslated) = imported();
    let contoso = site(&config, "Contoso Site");
    let errors = contoso["http_errors"].as_table().unwrap();
    assert_eq!(errors["error_mode"].as_str(), Some("DetailedLocalOnly"));
    let list = errors["error"].as_array().unwrap();
    let entries: Vec<(i64, Option<i64>, &str, &str)> = list
        .iter()
        .map(|e| {
            (
                e["status_code"].as_integer().unwrap(),
                e.get("sub_status_code").and_then(toml::Value::as_integer),
                e["path"].as_str().unwrap(),
                e["response_mode"].as_str().unwrap(),
            )
        })
        .collect();
    // The inherited stock 401 page is IIS's own; the stock 403 was removed; 403.16 redirects.
    assert_eq!(
        entries,
        vec![
            (
                403,
                Some(7),
                "/errors/certificate-required.aspx",
                "ExecuteURL"
            ),
            (401, Some(2), r"D:\sites\contoso\errors\401-2.htm", "File"),
        ]
    );
    let said = |needle: &str| untranslated.iter().any(|u| u.contains(needle));
    assert!(said("responseMode=\"Redirect\""), "{untranslated:#?}");
    assert!(said("is IIS's stock page"), "{untranslated:#?}");
    assert!(said("entries for 404"), "{untranslated:#?}");
    assert!(
        said("httpErrors@existingResponse not translated"),
        "{untranslated:#?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains(
            r#"custom error page for 401.2 "D:\sites\contoso\errors\401-2.htm" is a Windows path"#
        )),
        "{warnings:#?}"
    );

    // Fabrikam inherits only IIS's stock pages and sets no errorMode: no section at all.
    assert!(site(&config, "Fabrikam").get("http_errors").is_none());
}

#[test]
fn http_errors_of_a_location_go_to_the_location() {
    let (config, _, untranslated) = imported();
    let contoso = site(&config, "Contoso Site");
    let partners = contoso["location"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["path"].as_str() == Some("/partners"))
        .unwrap_or_else(|| panic!("no /partners location in {contoso:#?}"));
    // Only what the location adds: its mode and its page; the site's pages are inherited.
    let errors = partners["http_errors"].as_table().unwrap();
    assert_eq!(errors["error_mode"].as_str(), Some("Custom"));
    let list = errors["error"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{errors:#?}");
    assert_eq!(list[0]["status_code"].as_integer(), Some(403));
    assert_eq!(list[0]["sub_status_code"].as_integer(), Some(12));
    assert_eq!(
        list[0]["path"].as_str(),
        Some("/errors/partner-denied.aspx")
    );
    assert_eq!(list[0]["response_mode"].as_str(), Some("ExecuteURL"));
    assert!(
        !untranslated
            .iter()
            .any(|u| u.contains("below the site root")),
        "{untranslated:#?}"
    );
}

/// A bare `<location>` fragment, as the IIS documentation prints one.
#[test]
fn a_location_fragment_with_http_errors() {
    let fragment = r#"<location path="Default Web Site/hr">
    <system.webServer>
        <httpErrors errorMode="Custom">
            <remove statusCode="403" subStatusCode="7" />
            <error statusCode="403" subStatusCode="7" path="errors/hr-403-7.html" responseMode="File" />
        </httpErrors>
    </system.webServer>
</location>"#;
    let prepared = certgate::iis_import::standalone::prepare(fragment, "hr.xml", None).unwrap();
    let imported = import(
        &prepared.app_host,
        &prepared.web_configs,
        &ImportOptions {
            app_host_file: prepared.app_host_file,
            sites: prepared.sites,
            ..ImportOptions::default()
        },
    )
    .unwrap();
    let text = to_toml(&imported).unwrap();
    let config: certgate::config::raw::RawConfig =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let hr = config.sites[0]
        .locations
        .iter()
        .find(|l| l.path == "/hr")
        .unwrap_or_else(|| panic!("{text}"));
    let errors = hr.http_errors.as_ref().unwrap();
    assert_eq!(errors.error_mode.as_deref(), Some("Custom"));
    assert_eq!(errors.error.len(), 1);
    assert_eq!(
        (errors.error[0].status_code, errors.error[0].sub_status_code),
        (403, Some(7))
    );
    assert_eq!(errors.error[0].path, "errors/hr-403-7.html");
    assert!(text.contains("[site.location.http_errors]"), "{text}");
}

#[test]
fn the_extra_keys_sit_with_their_site() {
    let imported = import(APP_HOST, &[], &ImportOptions::default()).unwrap();
    let text = to_toml(&imported).unwrap();
    // `id` right after `name`; each site's tables before the next [[site]].
    assert!(text.contains("name = \"Contoso Site\"\nid = 2\n"), "{text}");
    let contoso = text.find("name = \"Contoso Site\"").unwrap();
    let fabrikam = text.find("name = \"Fabrikam\"").unwrap();
    let log = text.find("[site.log_file]").unwrap();
    let errors = text.find("[[site.http_errors.error]]").unwrap();
    assert!(contoso < log && log < fabrikam, "{text}");
    assert!(contoso < errors && errors < fabrikam, "{text}");
}
