//! Asking the running proxy to reload, through its admin listener's `POST /reload`.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

/// How long a reload may take (a large file of one-to-one mappings takes seconds).
const TIMEOUT: Duration = Duration::from_secs(60);

/// What the proxy said.
#[derive(Debug)]
pub enum Reload {
    /// The new configuration serves.
    Reloaded {
        /// Sites now served.
        sites: u64,
    },
    /// The proxy rejected the file and keeps the previous configuration.
    Rejected(Vec<String>),
    /// No answer, or not one from certgate.
    Failed(String),
}

/// The admin URL for an `admin_listen` address: a wildcard address is reached on loopback.
pub fn admin_url(admin_listen: &str) -> Option<String> {
    let addr: std::net::SocketAddr = admin_listen.trim().parse().ok()?;
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    Some(format!(
        "http://{}",
        std::net::SocketAddr::new(ip, addr.port())
    ))
}

/// POSTs `{base}/reload` (or `base` itself when it already ends in `/reload`).
pub async fn reload(base: &str) -> Reload {
    let url = if base.trim_end_matches('/').ends_with("/reload") {
        base.trim_end_matches('/').to_owned()
    } else {
        format!("{}/reload", base.trim_end_matches('/'))
    };
    match tokio::time::timeout(TIMEOUT, post(&url)).await {
        Err(_) => Reload::Failed(format!("{url}: no answer within {}s", TIMEOUT.as_secs())),
        Ok(Err(e)) => Reload::Failed(format!("{url}: {e}")),
        Ok(Ok((status, body))) => interpret(&url, status, &body),
    }
}

fn interpret(url: &str, status: u16, body: &[u8]) -> Reload {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Reload::Failed(format!(
            "{url} answered {status}, not certgate's reload endpoint (is this the admin listener \
             of a certgate that has POST /reload?)"
        ));
    };
    match (status, json["result"].as_str()) {
        (200, Some("reloaded")) => Reload::Reloaded {
            sites: json["sites"].as_u64().unwrap_or(0),
        },
        (422, Some("rejected")) => Reload::Rejected(
            json["errors"]
                .as_array()
                .map(|errors| {
                    errors
                        .iter()
                        .filter_map(|e| e["message"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => Reload::Failed(format!(
            "{url} answered {status}: {}",
            json["message"].as_str().unwrap_or("unexpected answer")
        )),
    }
}

async fn post(url: &str) -> Result<(u16, Bytes), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("the admin listener speaks plain http://".to_owned());
    }
    let authority = uri
        .authority()
        .ok_or_else(|| "the URL has no host".to_owned())?
        .clone();
    let tcp = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/reload", |p| p.as_str());
    let req = Request::post(path)
        .header(header::HOST, authority.as_str())
        .header(header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    // An admin endpoint's answer is small; refuse to buffer anything large.
    let body = http_body_util::Limited::new(resp.into_body(), 1 << 20)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_admin_addresses_are_reached_on_loopback() {
        assert_eq!(
            admin_url("0.0.0.0:9090").as_deref(),
            Some("http://127.0.0.1:9090")
        );
        assert_eq!(admin_url("[::]:9090").as_deref(), Some("http://[::1]:9090"));
        assert_eq!(
            admin_url("127.0.0.5:1").as_deref(),
            Some("http://127.0.0.5:1")
        );
        assert_eq!(admin_url("nonsense"), None);
    }
}
