//! The test KDC and its Apache backend (`scripts/samba-kdc.sh`, started by
//! `scripts/with-ad.sh`) for tests/kerberos*.rs: the environment they export, a site config
//! whose backend is that Apache, and a keep-alive client connection.

use std::sync::Arc;

use bytes::Bytes;
use certgate::kerberos::KerberosStats;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;

use certgate::pki::Issued;

use super::{Env, Pki, Resp};

/// The KDC and backend, from `scripts/samba-kdc.sh start`.
pub struct Krb {
    pub backend_url: String,
    pub backend_spn: String,
    pub other_spn: String,
    pub access_log: String,
}

pub fn krb() -> Option<Krb> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let names = [
        "KRB5_CONFIG",
        "KRB_BACKEND_URL",
        "KRB_BACKEND_SPN",
        "KRB_OTHER_SPN",
        "KRB_BACKEND_ACCESS_LOG",
        "AD_BIND_PASSWORD",
        "AD_USER_PASSWORD",
    ];
    let missing: Vec<&str> = names.iter().copied().filter(|n| var(n).is_none()).collect();
    let absent = if !cfg!(feature = "kerberos") {
        Some("these tests were built without the `kerberos` feature".to_owned())
    } else if !missing.is_empty() {
        Some(format!(
            "the test KDC and Kerberos backend are not running (missing {})",
            missing.join(", ")
        ))
    } else {
        None
    };
    if let Some(absent) = absent {
        let hint = format!(
            "{absent}. Run\n    \
             bash scripts/with-ad.sh cargo test --features kerberos --test kerberos\n\
             Set CERTGATE_SKIP_AD_TESTS=1 to skip instead."
        );
        if var("CERTGATE_SKIP_AD_TESTS").as_deref() == Some("1") {
            eprintln!("\n!!! SKIPPING Kerberos integration test: {hint}\n");
            return None;
        }
        panic!("{hint}");
    }
    let get = |name: &str| var(name).unwrap();
    Some(Krb {
        backend_url: get("KRB_BACKEND_URL"),
        backend_spn: get("KRB_BACKEND_SPN"),
        other_spn: get("KRB_OTHER_SPN"),
        access_log: get("KRB_BACKEND_ACCESS_LOG"),
    })
}

/// A site whose backend is the Apache, alice's certificate mapped one-to-one to `user`, the
/// service account's password from `AD_BIND_PASSWORD` (svc-certgate is the LDAP bind account
/// too), and `site_kerberos` / `extra` appended.
pub fn config(k: &Krb, user: &str, site_kerberos: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
backend_response_timeout = "5s"

[kerberos]
realm = "EXAMPLE.TEST"
principal = "svc-certgate"
password_env = "AD_BIND_PASSWORD"

[[site]]
name = "Kerberos"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
backend = "{url}"

[site.backend_kerberos]
{site_kerberos}

[site.iis_client_certificate_mapping_authentication]
enabled = true
one_to_one_certificate_mappings_enabled = true
many_to_one_certificate_mappings_enabled = true

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = '{user}'
certificate_file = "alice.crt"
password_env = "AD_USER_PASSWORD"
{extra}
"#,
        url = k.backend_url,
    )
}

pub async fn start(config: &str) -> Env {
    Env::start_with(Arc::new(Pki::new()), config).await
}

pub fn stats(env: &Env) -> KerberosStats {
    env.server
        .shared()
        .runtime()
        .kerberos
        .as_ref()
        .unwrap()
        .stats()
}

/// What the backend's CGI reported (`REMOTE_USER=...`, `X_REMOTE_USER=...`).
pub fn reported(resp: &Resp, key: &str) -> String {
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.text()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {key} in {}", resp.text()))
}

pub fn requests_logged(k: &Krb, path: &str) -> usize {
    std::fs::read_to_string(&k.access_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!(" {path} ")))
        .count()
}

/// One client connection (HTTP/1.1 keep-alive) to the proxy, for several requests in a row.
pub struct OneConnection(SendRequest<Full<Bytes>>);

impl OneConnection {
    pub async fn open(env: &Env, identity: &Issued) -> Self {
        let tls = env
            .client(Some(identity))
            .connect(env.addr(), "localhost")
            .await
            .unwrap();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        Self(sender)
    }

    /// Status and body of one request (a body makes it a POST).
    pub async fn send(&mut self, path: &str, body: Option<&str>) -> (u16, String) {
        self.request(path, body, &[]).await
    }

    /// A GET with extra request headers.
    pub async fn send_with(&mut self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        self.request(path, None, headers).await
    }

    /// A GET's status, response headers and body.
    pub async fn get_with_head(&mut self, path: &str) -> (u16, http::HeaderMap, String) {
        self.exchange(path, None, &[]).await
    }

    async fn request(
        &mut self,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let (status, _, body) = self.exchange(path, body, headers).await;
        (status, body)
    }

    async fn exchange(
        &mut self,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, http::HeaderMap, String) {
        let mut req = match body {
            None => Request::get(path),
            Some(_) => Request::post(path).header("content-type", "text/plain"),
        };
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .header("host", "localhost")
            .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
            .unwrap();
        let resp = self.0.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let head = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, head, String::from_utf8_lossy(&body).into_owned())
    }

    /// The `REMOTE_USER` the backend reported for a GET (or POST with `body`) that got 200.
    pub async fn user(&mut self, path: &str, body: Option<&str>) -> String {
        let (status, text) = self.send(path, body).await;
        assert_eq!(status, 200, "{path}: {text}");
        text.lines()
            .find_map(|l| l.strip_prefix("REMOTE_USER="))
            .unwrap_or_default()
            .to_owned()
    }
}

/// The backend's access log lines for `path`: whether each request carried a Negotiate token
/// (`token`, else `-`) and its status, in order (`scripts/samba-kdc.sh` logs both). Apache logs
/// a request after answering it, so this waits (up to 5 s) for `expected` lines, then returns
/// what is there.
pub async fn backend_saw(k: &Krb, path: &str, expected: usize) -> Vec<String> {
    let read = || {
        std::fs::read_to_string(&k.access_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!(" {path} ")))
            .map(|l| {
                let mut fields = l.rsplit(' ');
                let token = fields.next().unwrap_or_default();
                let status = fields.next().unwrap_or_default();
                format!("{token} {status}")
            })
            .collect::<Vec<String>>()
    };
    for _ in 0..100 {
        let lines = read();
        if lines.len() >= expected {
            return lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    read()
}
