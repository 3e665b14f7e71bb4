#![allow(clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use super::writer::Files;
use super::*;

fn site(dir: &Path, flags: &str, reference: bool) -> SiteLog {
    let raw = RawLogFile {
        directory: Some(dir.to_string_lossy().into_owned()),
        log_ext_file_flags: Some(flags.into()),
        reference_field: Some(reference),
        ..RawLogFile::default()
    };
    let mut issues = Issues::default();
    let log = build(Some(&raw), "Default Web Site", Some(1), dir, &mut issues).unwrap();
    assert!(issues.errors.is_empty(), "{:?}", issues.errors);
    log
}

fn entry(secs: u64, status: u16, substatus: u16) -> Entry {
    Entry {
        time: UNIX_EPOCH + Duration::from_secs(secs),
        server: "127.0.0.1:8443".parse().unwrap(),
        client_ip: "192.0.2.7".parse().unwrap(),
        method: "GET".into(),
        uri_stem: "/a b".into(),
        uri_query: Some("x=1".into()),
        user_name: Some("EXAMPLE\\alice".into()),
        version: "HTTP/1.1",
        user_agent: Some("curl/8.0 (test)".into()),
        cookie: None,
        referer: None,
        host: Some("localhost".into()),
        status,
        substatus,
        win32_status: 0,
        bytes_sent: 10,
        bytes_received: 20,
        time_taken_ms: 3,
        reference: (status >= 400).then(|| "ABCDEFGHJK".into()),
    }
}

/// 2026-11-26 23:59:59 UTC.
const LAST_SECOND: u64 = 1_795_737_599;

#[test]
fn rolls_over_at_utc_midnight_by_the_entry_clock_with_a_header_in_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = site(dir.path(), IIS_DEFAULT_FLAGS, false);
    let mut files = Files::default();
    files.write(&log, &entry(LAST_SECOND - 1, 200, 0)).unwrap();
    files.write(&log, &entry(LAST_SECOND, 403, 7)).unwrap();
    files.write(&log, &entry(LAST_SECOND + 1, 401, 2)).unwrap();
    files.flush().unwrap();
    let w3svc = dir.path().join("W3SVC1");
    let day1 = std::fs::read_to_string(w3svc.join("u_ex261126.log")).unwrap();
    let day2 = std::fs::read_to_string(w3svc.join("u_ex261127.log")).unwrap();
    let expected_fields = "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port \
        cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status \
        time-taken\r\n";
    assert!(day1.starts_with("#Software: certgate "), "{day1}");
    assert!(day1.contains("\r\n#Version: 1.0\r\n#Date: 2026-11-26 23:59:58\r\n"));
    assert!(day1.contains(expected_fields), "{day1}");
    assert_eq!(day1.lines().filter(|l| !l.starts_with('#')).count(), 2);
    assert!(day1.ends_with(
        "2026-11-26 23:59:59 127.0.0.1 GET /a+b x=1 8443 EXAMPLE\\alice 192.0.2.7 \
         curl/8.0+(test) - 403 7 0 3\r\n"
    ));
    assert!(day2.starts_with("#Software: "));
    assert!(day2.contains("#Date: 2026-11-27 00:00:00\r\n"));
    assert!(day2.ends_with(" 401 2 0 3\r\n"), "{day2}");
}

#[test]
fn header_block_repeats_after_a_restart_and_a_field_change() {
    let dir = tempfile::tempdir().unwrap();
    let log = site(dir.path(), IIS_DEFAULT_FLAGS, false);
    let mut files = Files::default();
    files.write(&log, &entry(LAST_SECOND - 10, 200, 0)).unwrap();
    files.write(&log, &entry(LAST_SECOND - 9, 200, 0)).unwrap();
    files.flush().unwrap();
    drop(files);
    // A restart: a new writer appends to the same file with a new header block.
    let mut files = Files::default();
    files.write(&log, &entry(LAST_SECOND - 8, 200, 0)).unwrap();
    // A configuration change that adds fields: one more header block.
    let wider = site(
        dir.path(),
        "Date, Time, SiteName, HttpStatus, BytesSent",
        true,
    );
    files
        .write(&wider, &entry(LAST_SECOND - 7, 403, 16))
        .unwrap();
    files.flush().unwrap();
    let text = std::fs::read_to_string(dir.path().join("W3SVC1/u_ex261126.log")).unwrap();
    assert_eq!(text.matches("#Software: ").count(), 3, "{text}");
    assert_eq!(text.matches("#Version: 1.0").count(), 3);
    assert!(
        text.contains("#Fields: date time s-sitename sc-status sc-bytes sc(X-Certgate-Ref)\r\n")
    );
    assert!(
        text.ends_with("2026-11-26 23:59:52 W3SVC1 403 10 ABCDEFGHJK\r\n"),
        "{text}"
    );
}

#[test]
fn config_errors_name_the_key() {
    let raw = RawLogFile {
        period: Some("Fortnightly".into()),
        log_ext_file_flags: Some("Date, Nope".into()),
        ..RawLogFile::default()
    };
    let mut issues = Issues::default();
    assert!(build(Some(&raw), "s", None, Path::new("/"), &mut issues).is_none());
    let keys: Vec<&str> = issues.errors.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, [".directory", ".log_ext_file_flags", ".period"]);
    let disabled = RawLogFile {
        enabled: Some(false),
        ..raw
    };
    assert!(
        build(
            Some(&disabled),
            "s",
            None,
            Path::new("/"),
            &mut Issues::default()
        )
        .is_none()
    );
}

#[test]
fn site_keys_override_site_defaults() {
    let defaults = RawLogFile {
        directory: Some("/var/log/certgate".into()),
        period: Some("Hourly".into()),
        ..RawLogFile::default()
    };
    let site = RawLogFile {
        period: Some("Daily".into()),
        ..RawLogFile::default()
    };
    let merged = RawLogFile::merged(Some(&defaults), Some(&site)).unwrap();
    assert_eq!(merged.directory.as_deref(), Some("/var/log/certgate"));
    assert_eq!(merged.period.as_deref(), Some("Daily"));
    let log = build(
        Some(&merged),
        "My Site/1",
        None,
        Path::new("/"),
        &mut Issues::default(),
    )
    .unwrap();
    assert_eq!(log.directory, Path::new("/var/log/certgate/My_Site_1"));
}
