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

/// A backend that answers every request with a body far larger than anyone reads, written as
/// fast as the connection takes it; for `/cut` it hangs up after 128 KiB instead.
async fn endless_backend() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let chunk = vec![b'x'; 64 * 1024];
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
                    .await;
                let cut = head.starts_with(b"GET /cut ");
                if head.starts_with(b"GET /slow ") {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                let mut sent = 0;
                while socket.write_all(&chunk).await.is_ok() {
                    sent += chunk.len();
                    if cut && sent >= 128 * 1024 {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn responses_cut_short_are_logged_with_the_win32_status_iis_logs() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = endless_backend().await;
    let config = BASIC
        .replace("http://{backend}", &format!("http://{backend}"))
        .replace(
            "[[site.location]]",
            "[site.log_file]\ndirectory = \"logs\"\n\n[[site.location]]",
        );
    let env = Env::start(&config).await;
    let alice = env.client(Some(&env.pki.alice));
    // A refusal, complete: 0.
    assert_eq!(env.client(None).get(env.addr(), "/").await.code(), "403.7");

    // Read the head and some of the body, then hang up, as a user closing the tab does.
    let tcp = tokio::net::TcpStream::connect(env.addr()).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(&alice.config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < 256 * 1024 {
        let n = tls.read(&mut buf).await.unwrap();
        assert!(n > 0, "the proxy closed first");
        got += n;
    }
    drop(tls);

    // A client that leaves while the backend is still thinking: IIS finishes the request and
    // logs its status with the failed send's 64.
    let tcp = tokio::net::TcpStream::connect(env.addr()).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(&alice.config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(tls);

    // The backend fails mid-body: certgate aborts the client's connection itself.
    let cut = alice
        .send(
            env.addr(),
            "localhost",
            http::Request::get("/cut")
                .header("host", "localhost")
                .body(bytes::Bytes::new())
                .unwrap(),
        )
        .await;
    assert!(cut.is_err(), "the body was cut short: {cut:?}");

    // The line is written when the proxy notices (its next write fails); shutdown waits for
    // the connection and flushes the writer.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let Env {
        server,
        dir,
        backend_guard,
        ..
    } = env;
    server.shutdown(Duration::from_secs(5)).await;
    drop(backend_guard);

    let site_dir = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = std::fs::read_dir(&site_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    let fields = |stem: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(' ').map(str::to_owned).collect::<Vec<_>>())
            .find(|f| f[4] == stem)
            .unwrap_or_else(|| panic!("no line for {stem} in {text}"))
    };
    // sc-status sc-substatus sc-win32-status
    assert_eq!(fields("/")[11..14], ["403", "7", "0"], "{text}");
    assert_eq!(fields("/big")[11..14], ["200", "0", "64"], "{text}");
    assert_eq!(fields("/cut")[11..14], ["200", "0", "1236"], "{text}");
    assert_eq!(fields("/slow")[11..14], ["200", "0", "64"], "{text}");
}
