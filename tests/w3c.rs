//! W3C log files read by a parser nobody here wrote: GoAccess (`--log-format=W3C`) must count
//! the same requests and status codes the test sent. scripts/test.sh installs goaccess.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use support::{BASIC, Env};

fn goaccess_json(log: &Path) -> serde_json::Value {
    let out = std::process::Command::new("goaccess")
        .arg(log)
        .args(["--log-format=W3C", "-o", "json", "--no-global-config"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run goaccess ({e}); install it (apt-get install goaccess) or run scripts/test.sh")
        });
    assert!(
        out.status.success(),
        "goaccess failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `{"200": 4, "403": 2, ...}` from GoAccess's status-code panel.
fn status_counts(report: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for class in report["status_codes"]["data"].as_array().unwrap() {
        for item in class["items"].as_array().unwrap() {
            let code = item["data"].as_str().unwrap()[..3].to_owned();
            counts.insert(code, item["hits"]["count"].as_u64().unwrap());
        }
    }
    counts
}

#[tokio::test]
async fn goaccess_reads_the_files_and_counts_what_was_sent() {
    // `id` and `[site.log_file]` belong to the site, so they go before its first location.
    let config = BASIC
        .replace(
            "name = \"Default Web Site\"",
            "name = \"Default Web Site\"\nid = 3",
        )
        .replace(
            "[[site.location]]",
            "[site.log_file]\ndirectory = \"logs\"\nreference_field = true\n\n[[site.location]]",
        );
    let env = Env::start(&config).await;
    let alice = env.client(Some(&env.pki.alice));
    let bob = env.client(Some(&env.pki.bob));
    let anonymous = env.client(None);
    let mut references = Vec::new();
    for _ in 0..3 {
        assert_eq!(alice.get(env.addr(), "/app?x=1&y=a%20b").await.status, 200);
    }
    for _ in 0..2 {
        let resp = anonymous.get(env.addr(), "/").await;
        assert_eq!(resp.code(), "403.7");
        references.push(resp.headers["x-certgate-ref"].to_str().unwrap().to_owned());
    }
    let resp = bob.get(env.addr(), "/app").await;
    assert_eq!(resp.code(), "401.2");
    references.push(resp.headers["x-certgate-ref"].to_str().unwrap().to_owned());
    assert_eq!(anonymous.get(env.addr(), "/public/x").await.status, 200);

    // Shutdown flushes the writer: every line is on disk when it returns.
    let Env {
        server,
        dir,
        backend_guard,
        ..
    } = env;
    server.shutdown(Duration::from_secs(5)).await;
    drop(backend_guard);

    let w3svc = dir.path().join("logs/W3SVC3");
    let files: Vec<_> = std::fs::read_dir(&w3svc)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("u_ex") && name.ends_with(".log") && name.len() == 14,
        "{name}"
    );
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.starts_with("#Software: certgate "), "{text}");
    assert!(text.contains(
        "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip \
         cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken \
         sc(X-Certgate-Ref)\r\n"
    ));
    assert!(text.contains(" GET /app x=1&y=a%20b "), "{text}");
    assert!(text.contains(" EXAMPLE\\alice 127.0.0.1 "), "{text}");
    for reference in &references {
        assert!(
            text.contains(&format!(" {reference}\r\n")),
            "{reference} in {text}"
        );
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 7, "{text}");
    let substatus: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').nth(12).unwrap())
        .collect();
    assert_eq!(substatus, ["0", "0", "0", "7", "7", "2", "0"]);

    let report = goaccess_json(&files[0]);
    assert_eq!(report["general"]["total_requests"], 7, "{report}");
    assert_eq!(report["general"]["failed_requests"], 0, "{report}");
    let expected: BTreeMap<String, u64> = [("200", 4), ("401", 1), ("403", 2)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(status_counts(&report), expected);
}
