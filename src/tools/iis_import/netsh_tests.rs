#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const DUMP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/iis/netsh-sslcert.txt"
));

#[test]
fn a_multi_binding_dump_is_read_whole() {
    let b = parse(DUMP, "sslcert.txt").unwrap();
    let endpoints: Vec<String> = b.iter().map(|b| b.endpoint.to_string()).collect();
    assert_eq!(
        endpoints,
        [
            "Hostname:port contoso.test:443",
            "Hostname:port www.contoso.test:443",
            "IP:port 0.0.0.0:8443",
            "Central Certificate Store 443",
            "IP:port 0.0.0.0:5986",
        ]
    );
    let contoso = &b[0];
    assert_eq!(contoso.line, 5);
    assert!(contoso.verify_revocation && !contoso.cached_only && contoso.usage_check);
    assert_eq!(contoso.use_freshness_time, Some(true));
    assert_eq!(contoso.freshness_time_secs, 3600);
    assert_eq!(contoso.url_retrieval_timeout_ms, 5000);
    assert!(contoso.negotiate_client_certificate && !contoso.ds_mapper);
    assert_eq!(contoso.application_id.as_deref(), Some(IIS_APP_ID));
    assert_eq!(contoso.certificate_store.as_deref(), Some("My"));
    assert_eq!(contoso.ctl_identifier, None);
    // The newer lines are kept, the Extended Properties (HTTP/2 settings) are not.
    assert!(
        contoso
            .other
            .iter()
            .any(|(n, v, _)| n == "Disable HTTP2" && v == "Not Set")
    );
    assert!(!contoso.other.iter().any(|(n, _, _)| n == "PropertyId"));
    let fabrikam = &b[2];
    assert!(!fabrikam.verify_revocation && !fabrikam.usage_check && fabrikam.ds_mapper);
    assert_eq!(
        fabrikam.ctl_identifier.as_deref(),
        Some("ContosoPartnerCAs")
    );
    assert_eq!(fabrikam.ctl_store.as_deref(), Some("Root"));
    assert_eq!(fabrikam.use_freshness_time, None);
    let ccs = &b[3];
    assert!(ccs.cached_only && ccs.certificate_store.is_none());
}

#[test]
fn crlf_line_endings_byte_order_marks_and_utf16_are_read() {
    let crlf = DUMP.replace('\n', "\r\n");
    assert_eq!(
        parse(&crlf, "f").unwrap(),
        parse(DUMP, "f").unwrap(),
        "CRLF must not change anything"
    );
    // PowerShell 5 `netsh http show sslcert > file` writes UTF-16LE with a BOM.
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(crlf.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(decode(&utf16).unwrap(), crlf);
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend(DUMP.bytes());
    assert_eq!(decode(&bom).unwrap(), DUMP);
    assert_eq!(decode(&[0xFF, 0xFE, 0x00, 0xD8]), None, "lone surrogate");
    assert_eq!(decode(&[0xC3]), None);
}

#[test]
fn unknown_lines_and_header_lines_do_not_break_parsing() {
    let text = "SSL Certificate bindings:\n-----\n\n    IP:port : [::]:443\n    \
                Disable Something New In 2030 : Set\n    A Future Header:\n    \
                Whatever : 1\n    Usage Check : Disabled\n";
    let b = parse(text, "f").unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].endpoint, Endpoint::IpPort("[::]:443".parse().unwrap()));
    assert_eq!(
        b[0].other,
        [(
            "Disable Something New In 2030".to_owned(),
            "Set".to_owned(),
            5
        )]
    );
    // After a sub-block header the lines belong to it, even a known name.
    assert!(b[0].usage_check);
}

#[test]
fn a_malformed_line_is_an_error_naming_it() {
    let mut text = DUMP.to_owned();
    text = text.replacen(
        "    Usage Check                  : Enabled\n",
        "    Usage Check                  : Enabled\n    this line was cut\n",
        1,
    );
    let e = parse(&text, "sslcert.txt").unwrap_err();
    assert_eq!(e.line, 13);
    assert_eq!(
        e.to_string(),
        "sslcert.txt:13: expected 'Name : value' as `netsh http show sslcert` prints it, found \
         'this line was cut'"
    );
}

#[test]
fn bad_values_of_known_lines_are_errors_naming_the_line() {
    let cases = [
        (
            "    IP:port : 0.0.0.0:443\n    Verify Client Certificate Revocation : Sometimes\n",
            2,
            "'Verify Client Certificate Revocation': 'Sometimes' is not Enabled or Disabled",
        ),
        (
            "    IP:port : 0.0.0.0:443\n    URL Retrieval Timeout : 15s\n",
            2,
            "'URL Retrieval Timeout': '15s' is not a number",
        ),
        (
            "    IP:port : 0.0.0.0:99999\n",
            1,
            "IP:port '0.0.0.0:99999' is not an address and port",
        ),
        (
            "    Hostname:port : www.example.test\n",
            1,
            "Hostname:port 'www.example.test' has no port",
        ),
        (
            "    Central Certificate Store : https\n",
            1,
            "'https' is not a port number",
        ),
        (
            "    IP:port : 0.0.0.0:443\n    Usage Check : Enabled\n    Usage Check : Disabled\n",
            3,
            "'Usage Check' appears twice in one binding",
        ),
    ];
    for (text, line, message) in cases {
        let e = parse(text, "f").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (line, message), "{text}");
    }
}

#[test]
fn localised_or_empty_output_is_refused() {
    let pt = "Ligacoes do Certificado SSL:\n\n    IP:porta : 0.0.0.0:443\n";
    let e = parse(pt, "f").unwrap_err();
    assert_eq!(e.line, 1, "{e}");
    let e = parse("    IP:porta     : 0.0.0.0:443\n", "f").unwrap_err();
    assert!(e.message.contains("before any binding line"), "{e}");
    let e = parse("\r\nSSL Certificate bindings:\r\n-----\r\n\r\n", "f").unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.message.contains("no SSL certificate binding"), "{e}");
}

#[test]
fn hostile_text_is_quoted_short_and_escaped() {
    let long = format!("{}\u{1b}[31m", "x".repeat(200));
    let e = parse(&long, "f").unwrap_err();
    assert!(e.message.chars().count() < 200, "{}", e.message);
    assert!(!e.message.contains('\u{1b}'));
}
