//! A small HTTP backend that reports what it received, used by `certgate demo`, the test suite
//! and the container examples (`certgate echo-backend`).
//!
//! It answers every request with JSON describing the method, path, query, headers and the
//! length and SHA-256 of the body (read as a stream, never buffered whole), so a caller can see
//! exactly which identity headers reached the backend. A few paths help testing:
//! `/bytes/N` streams N bytes, `/status/N` answers status N, `/delay/MS` waits before answering,
//! and a WebSocket (`Upgrade: websocket`) request is accepted and echoed byte for byte.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

type EchoBody = BoxBody<Bytes, Infallible>;

/// Serves until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |req| respond(peer, req));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// Binds `addr` and serves in the background; returns the bound address.
pub async fn spawn(addr: SocketAddr, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, shutdown));
    Ok(bound)
}

async fn respond(
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<EchoBody>, Infallible> {
    let path = req.uri().path().to_owned();
    if req.headers().contains_key(header::UPGRADE) {
        return Ok(websocket(&mut req));
    }
    if let Some(ms) = path
        .strip_prefix("/delay/")
        .and_then(|s| s.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    }
    if let Some(n) = path
        .strip_prefix("/bytes/")
        .and_then(|s| s.parse::<u64>().ok())
    {
        return Ok(stream_bytes(n));
    }
    let status = path
        .strip_prefix("/status/")
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);

    let method = req.method().to_string();
    let query = req.uri().query().map(str::to_owned);
    let version = format!("{:?}", req.version());
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        let v = serde_json::Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match headers.get_mut(name.as_str()) {
            Some(serde_json::Value::Array(list)) => list.push(v),
            Some(existing) => {
                let first = existing.take();
                *existing = serde_json::Value::Array(vec![first, v]);
            }
            None => {
                headers.insert(name.as_str().to_owned(), v);
            }
        }
    }
    let mut body = req.into_body();
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut length: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    length += data.len() as u64;
                    ctx.update(data);
                }
            }
            Err(_) => break,
        }
    }
    let report = serde_json::json!({
        "method": method,
        "path": path,
        "query": query,
        "version": version,
        "peer": peer.to_string(),
        "headers": headers,
        "body_length": length,
        "body_sha256": crate::identity::hex_upper(ctx.finish().as_ref()),
    });
    let text = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
    let mut resp = Response::new(Full::new(Bytes::from(text)).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

fn stream_bytes(n: u64) -> Response<EchoBody> {
    const CHUNK: u64 = 64 * 1024;
    let chunks = (0..n.div_ceil(CHUNK)).map(move |i| {
        let len = CHUNK.min(n - i * CHUNK) as usize;
        Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; len])))
    });
    let body = StreamBody::new(futures_util::stream::iter(chunks));
    let mut resp = Response::new(BodyExt::boxed(body));
    if let Ok(v) = HeaderValue::from_str(&n.to_string()) {
        resp.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    resp
}

fn websocket(req: &mut Request<Incoming>) -> Response<EchoBody> {
    let accept = req
        .headers()
        .get("sec-websocket-key")
        .map(|key| {
            let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
            ctx.update(key.as_bytes());
            ctx.update(WEBSOCKET_GUID.as_bytes());
            STANDARD.encode(ctx.finish().as_ref())
        })
        .unwrap_or_default();
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let io = TokioIo::new(upgraded);
            let (mut rd, mut wr) = tokio::io::split(io);
            let _ = tokio::io::copy(&mut rd, &mut wr).await;
        }
    });
    let mut resp = Response::new(Full::new(Bytes::new()).boxed());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    resp
}
