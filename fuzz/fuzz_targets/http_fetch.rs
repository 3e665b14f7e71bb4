#![no_main]
//! The proxy's CRL/OCSP HTTP fetch (`revocation::fetch::http`) against a server that answers
//! every connection with the fuzzed bytes: status line, headers (redirects, Content-Length),
//! chunked or plain body, garbage or truncation. A real loopback socket and the real client
//! (hyper), so what is fuzzed is exactly what a hostile distribution point or responder reaches.
//!
//! No redirect is followed (`max_redirects = 0`): a fuzzed `Location` must never make the fuzzer
//! connect to another port of a shared machine. The server closes each connection after its
//! answer (with a reset once the client is done, so no TIME_WAIT piles up), so every fetch must
//! end well before its deadline: a stall on hostile input is a failure.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use certgate::revocation::fetch::{self, FetchError, Limits};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const MAX_BYTES: usize = 2048;
const DEADLINE: Duration = Duration::from_secs(5);

struct Server {
    rt: tokio::runtime::Runtime,
    url: String,
    reply: Arc<Mutex<Vec<u8>>>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let reply = Arc::new(Mutex::new(Vec::new()));
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::clone(&reply);
        rt.spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    continue;
                };
                let bytes = shared.lock().expect("reply").clone();
                tokio::spawn(async move {
                    let _ = tcp.write_all(&bytes).await;
                    let _ = tcp.shutdown().await;
                    // Wait for the client to close, then reset: nobody keeps a TIME_WAIT.
                    let mut sink = [0u8; 4096];
                    let drain =
                        async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
                    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
                    let _ = tcp.set_zero_linger();
                });
            }
        });
        Server {
            rt,
            url: format!("http://127.0.0.1:{port}/ca.crl"),
            reply,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, reply)) = data.split_first() else {
        return;
    };
    let server = server();
    *server.reply.lock().expect("reply") = reply.to_vec();
    let limits = Limits {
        max_bytes: MAX_BYTES,
        max_redirects: 0,
        allowed_hosts: vec!["127.0.0.1".to_owned()],
        ..Limits::default()
    };
    // Odd first byte: an OCSP POST; even: a CRL GET.
    let post = (mode & 1 == 1).then(|| ("application/ocsp-request", vec![0x30, 0x00]));
    let result = server
        .rt
        .block_on(fetch::http(&server.url, post, &limits, DEADLINE));
    match result {
        Ok(body) => {
            assert!(body.len() <= MAX_BYTES, "{} bytes past the cap", body.len());
            assert!(reply.len() >= body.len(), "more body than was sent");
        }
        Err(FetchError::Timeout { .. }) => panic!("fetch stalled on a server that closed"),
        Err(FetchError::Scheme(_) | FetchError::Host(_) | FetchError::Url(_)) => {
            panic!("the configured URL was refused")
        }
        Err(e) => assert!(!e.to_string().is_empty() && !e.kind().is_empty()),
    }
});
