//! The result of a run: counts, error kinds and latency percentiles, as text and JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::json;

use super::Mode;

/// Why one request failed. `Ord` so summaries list kinds in a stable order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// TCP connect failed (refused, unreachable, out of ports).
    Connect,
    /// The TLS handshake failed for a reason other than certificates (protocol, version,
    /// cipher mismatch, or the connection dropping mid-handshake).
    TlsHandshake,
    /// The server refused our client certificate (a certificate-related alert). With TLS 1.3
    /// this arrives after the client considers the handshake done, while reading the response.
    /// Servers that answer an HTTP error instead (nginx: 400) show up as [`Self::Status`].
    TlsCertificateRejected,
    /// We refused the server's certificate (chain or name did not verify against --ca).
    TlsServerCertificate,
    /// A complete response with a non-2xx status.
    Status(u16),
    /// The request did not finish within --timeout.
    Timeout,
    /// The connection failed after the handshake (reset, unexpected EOF).
    Io,
    /// The response was not valid HTTP/1.1.
    Http,
}

impl ErrorKind {
    /// Stable machine-readable name, used as the JSON key.
    pub fn key(self) -> String {
        match self {
            Self::Connect => "connect".into(),
            Self::TlsHandshake => "tls_handshake".into(),
            Self::TlsCertificateRejected => "tls_certificate_rejected".into(),
            Self::TlsServerCertificate => "tls_server_certificate".into(),
            Self::Status(code) => format!("status_{code}"),
            Self::Timeout => "timeout".into(),
            Self::Io => "io".into(),
            Self::Http => "http".into(),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect => f.write_str("connect"),
            Self::TlsHandshake => f.write_str("tls handshake"),
            Self::TlsCertificateRejected => f.write_str("tls certificate rejected"),
            Self::TlsServerCertificate => f.write_str("tls server certificate"),
            Self::Status(code) => write!(f, "http status {code}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Io => f.write_str("io"),
            Self::Http => f.write_str("http protocol"),
        }
    }
}

/// Latency of successful (2xx) requests. In handshake and resume modes it spans connect,
/// handshake, request and the full response; in keepalive mode only the request and response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Fastest request.
    pub min: Duration,
    /// Mean.
    pub mean: Duration,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest request.
    pub max: Duration,
}

/// Result of one run.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Target URL.
    pub url: String,
    /// Mode the run used.
    pub mode: Mode,
    /// Workers (connections in keepalive mode).
    pub concurrency: u32,
    /// Wall time from the first request to the end of the run.
    pub elapsed: Duration,
    /// Requests that finished, successfully or not (abandoned in-flight requests excluded).
    pub requests: u64,
    /// Requests answered with a 2xx status.
    pub ok: u64,
    /// Failed requests by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The first error message seen for each kind, to tell an expired CA from a typo.
    pub error_examples: BTreeMap<ErrorKind, String>,
    /// TLS handshakes completed.
    pub connections: u64,
    /// Of those, how many resumed a session.
    pub resumed: u64,
    /// Of those, how many needed a HelloRetryRequest: the server accepted none of our key
    /// shares (for example an OpenSSL without X25519MLKEM768 and no X25519 share), which costs a
    /// round trip and a second key generation per handshake.
    pub hello_retries: u64,
    /// Protocol version, cipher suite and key-exchange group of the first handshake, e.g.
    /// `TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519`.
    pub negotiated: Option<String>,
    /// Latency of the 2xx requests.
    pub latency: Latency,
    /// CPU time (user + system) the generator itself used during the run, if the platform
    /// tells (Linux). Close to `elapsed` × usable cores means the generator, not the server,
    /// was the limit.
    pub client_cpu: Option<Duration>,
}

impl Summary {
    /// Successful (2xx) requests per second.
    pub fn rate(&self) -> f64 {
        per_second(self.ok, self.elapsed)
    }

    /// Failed requests, all kinds.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Fraction of handshakes that resumed, 0.0..=1.0.
    pub fn resumed_fraction(&self) -> f64 {
        if self.connections == 0 {
            0.0
        } else {
            self.resumed as f64 / self.connections as f64
        }
    }

    /// The summary as a JSON object; durations are in microseconds (`*_us`). Print it with
    /// `{:#}` for the indented form.
    pub fn to_json(&self) -> serde_json::Value {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let errors: serde_json::Map<String, serde_json::Value> = self
            .errors
            .iter()
            .map(|(kind, count)| (kind.key(), json!(count)))
            .collect();
        let examples: serde_json::Map<String, serde_json::Value> = self
            .error_examples
            .iter()
            .map(|(kind, text)| (kind.key(), json!(text)))
            .collect();
        json!({
            "url": self.url,
            "mode": self.mode.as_str(),
            "concurrency": self.concurrency,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "requests": self.requests,
            "ok": self.ok,
            "rate_per_s": self.rate(),
            "errors_total": self.error_count(),
            "errors": errors,
            "error_examples": examples,
            "connections": self.connections,
            "resumed": self.resumed,
            "resumed_fraction": self.resumed_fraction(),
            "hello_retries": self.hello_retries,
            "negotiated": self.negotiated,
            "latency": {
                "min_us": us(self.latency.min),
                "mean_us": us(self.latency.mean),
                "p50_us": us(self.latency.p50),
                "p90_us": us(self.latency.p90),
                "p99_us": us(self.latency.p99),
                "max_us": us(self.latency.max),
            },
            "client_cpu_s": self.client_cpu.map(|d| d.as_secs_f64()),
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} — mode {}, concurrency {}, {:.2} s",
            self.url,
            self.mode,
            self.concurrency,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  requests     {} ({} ok, {} failed)",
            self.requests,
            self.ok,
            self.error_count()
        )?;
        writeln!(f, "  rate         {:.1} req/s (2xx only)", self.rate())?;
        write!(
            f,
            "  handshakes   {} ({} resumed, {:.1} %",
            self.connections,
            self.resumed,
            self.resumed_fraction() * 100.0
        )?;
        if self.hello_retries > 0 {
            write!(f, "; {} needed a HelloRetryRequest", self.hello_retries)?;
        }
        writeln!(f, ")")?;
        if let Some(negotiated) = &self.negotiated {
            writeln!(f, "  tls          {negotiated}")?;
        }
        let l = &self.latency;
        if self.ok == 0 {
            writeln!(f, "  latency      n/a (no successful request)")?;
        } else {
            writeln!(
                f,
                "  latency      p50 {}  p90 {}  p99 {}  max {}  (min {}, mean {})",
                Ms(l.p50),
                Ms(l.p90),
                Ms(l.p99),
                Ms(l.max),
                Ms(l.min),
                Ms(l.mean)
            )?;
        }
        if self.errors.is_empty() {
            writeln!(f, "  errors       none")?;
        } else {
            let mut label = "  errors      ";
            for (kind, count) in &self.errors {
                write!(f, "{label} {kind}: {count}")?;
                if let Some(example) = self.error_examples.get(kind).filter(|e| !e.is_empty()) {
                    write!(f, " (first: {example})")?;
                }
                writeln!(f)?;
                label = "             ";
            }
        }
        if let Some(cpu) = self.client_cpu {
            let share = cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9) * 100.0;
            writeln!(
                f,
                "  client cpu   {:.2} s ({share:.0} % of one core)",
                cpu.as_secs_f64()
            )?;
        }
        Ok(())
    }
}

/// Duration shown in ms with enough digits for sub-millisecond loopback latencies.
struct Ms(Duration);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_secs_f64() * 1e3;
        if ms < 10.0 {
            write!(f, "{ms:.3} ms")
        } else {
            write!(f, "{ms:.1} ms")
        }
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_have_stable_keys() {
        assert_eq!(ErrorKind::Status(503).key(), "status_503");
        assert_eq!(
            ErrorKind::TlsCertificateRejected.key(),
            "tls_certificate_rejected"
        );
        assert_eq!(ErrorKind::Status(503).to_string(), "http status 503");
        assert!(ErrorKind::Connect < ErrorKind::Status(200));
    }

    #[test]
    fn summary_renders_text_and_json() {
        let summary = Summary {
            url: "https://localhost/".into(),
            mode: Mode::Resume,
            concurrency: 2,
            elapsed: Duration::from_secs(2),
            requests: 12,
            ok: 10,
            errors: BTreeMap::from([(ErrorKind::Status(500), 2)]),
            error_examples: BTreeMap::new(),
            connections: 12,
            resumed: 9,
            hello_retries: 0,
            negotiated: None,
            latency: Latency {
                p50: Duration::from_micros(1500),
                ..Latency::default()
            },
            client_cpu: Some(Duration::from_millis(500)),
        };
        let text = summary.to_string();
        assert!(text.contains("5.0 req/s"), "{text}");
        assert!(text.contains("http status 500: 2"), "{text}");
        assert!(text.contains("75.0 %"), "{text}");
        let json = summary.to_json();
        assert_eq!(json["errors"]["status_500"], 2);
        assert_eq!(json["rate_per_s"], 5.0);
        assert_eq!(json["latency"]["p50_us"], 1500.0);
        assert_eq!(json["mode"], "resume");
    }
}
