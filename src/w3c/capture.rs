//! What a request contributes to its W3C line, taken from the request head when it arrives
//! (the head is gone by the time the response body ends and the line is written).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, Request, header};

use super::{Entry, Field, SiteLog};

/// The request half of a W3C entry; only built for sites that log W3C.
#[derive(Debug)]
pub struct Pending {
    site: Arc<SiteLog>,
    server: SocketAddr,
    query: Option<String>,
    user_agent: Option<String>,
    cookie: Option<String>,
    referer: Option<String>,
    host: Option<String>,
    bytes_received: u64,
    version: &'static str,
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

impl Pending {
    /// Captures the fields the site's selection needs from the request head.
    pub fn capture<B>(site: &Arc<SiteLog>, server: SocketAddr, req: &Request<B>) -> Self {
        let headers = req.headers();
        let wants = |f: Field| site.fields.contains(&f);
        let head_bytes: usize = headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>()
            + req.method().as_str().len()
            + req.uri().path_and_query().map_or(1, |pq| pq.as_str().len())
            + 14;
        let body_bytes = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| header_text(headers, header::HOST));
        Self {
            site: Arc::clone(site),
            server,
            query: req.uri().query().map(str::to_owned),
            user_agent: wants(Field::UserAgent)
                .then(|| header_text(headers, header::USER_AGENT))
                .flatten(),
            cookie: wants(Field::Cookie)
                .then(|| header_text(headers, header::COOKIE))
                .flatten(),
            referer: wants(Field::Referer)
                .then(|| header_text(headers, header::REFERER))
                .flatten(),
            host: wants(Field::Host).then_some(host).flatten(),
            bytes_received: head_bytes as u64 + body_bytes,
            version: match req.version() {
                http::Version::HTTP_2 => "HTTP/2",
                http::Version::HTTP_10 => "HTTP/1.0",
                http::Version::HTTP_09 => "HTTP/0.9",
                http::Version::HTTP_3 => "HTTP/3",
                _ => "HTTP/1.1",
            },
        }
    }

    /// Completes the entry with the response's facts and queues it for the writer.
    #[allow(clippy::too_many_arguments)]
    pub fn submit(
        self,
        client_ip: std::net::IpAddr,
        method: &str,
        path: &str,
        (status, substatus): (u16, u16),
        user: Option<&str>,
        bytes_sent: u64,
        time_taken_ms: u64,
        reference: Option<&str>,
        win32_status: u32,
    ) {
        let entry = Entry {
            time: SystemTime::now(),
            server: self.server,
            client_ip,
            method: method.to_owned(),
            uri_stem: path.to_owned(),
            uri_query: self.query,
            user_name: user.map(str::to_owned),
            version: self.version,
            user_agent: self.user_agent,
            cookie: self.cookie,
            referer: self.referer,
            host: self.host,
            status,
            substatus,
            win32_status,
            bytes_sent,
            bytes_received: self.bytes_received,
            time_taken_ms,
            reference: reference.map(str::to_owned),
        };
        super::submit(self.site, entry);
    }
}
