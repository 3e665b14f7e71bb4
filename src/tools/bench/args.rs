//! The command line of `certgate bench`: what to load, how, and for how long.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::Method;

/// What each request costs the server, i.e. what the run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum Mode {
    /// New TCP connection and full TLS handshake (resumption off) for every request.
    Handshake,
    /// New TCP connection per request, resuming a TLS session from a store shared by all
    /// workers; the summary reports how many handshakes actually resumed.
    Resume,
    /// `-c` persistent connections, requests back to back; reconnects when the server closes.
    Keepalive,
}

impl Mode {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Resume => "resume",
            Self::Keepalive => "keepalive",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Restricts the offered TLS versions (default: both 1.3 and 1.2, server's choice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 only; its ticket resumption skips the key exchange and is much cheaper.
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[value(name = "1.3")]
    Tls13,
}

/// Command-line arguments of `certgate bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Target URL; must be https://. Its host is the SNI and Host header unless overridden.
    pub url: String,
    /// Client certificate chain (PEM, leaf first).
    #[arg(long)]
    pub cert: PathBuf,
    /// Client private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long)]
    pub key: PathBuf,
    /// CA certificates (PEM) that the server certificate must chain to. There is deliberately
    /// no fallback to system roots: a benchmark should fail loudly when pointed at the wrong
    /// server.
    #[arg(long, required_unless_present = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not verify the server certificate chain or name (the handshake signature is still
    /// checked, so the client's work per handshake stays realistic). For measuring only: it
    /// would happily benchmark an impostor.
    #[arg(long, conflicts_with = "ca")]
    pub insecure: bool,
    /// What each request costs: a full handshake, a resumed handshake, or nothing (keep-alive).
    #[arg(long, value_enum, default_value_t = Mode::Handshake)]
    pub mode: Mode,
    /// Number of concurrent workers (connections in keepalive mode).
    #[arg(short = 'c', long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// How long to run, in seconds ("10", "0.5") or humantime ("2m"). In-flight requests are
    /// abandoned when it ends.
    #[arg(short = 'd', long, default_value = "10", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many requests (whichever of -n and -d comes first).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Per-request deadline covering connect, handshake and the full response.
    #[arg(long, default_value = "10", value_parser = parse_duration)]
    pub timeout: Duration,
    /// SNI to send instead of the URL host (also used to verify the server certificate).
    #[arg(long)]
    pub servername: Option<String>,
    /// Connect to this address instead of resolving the URL host (like curl --connect-to).
    #[arg(long, value_name = "ADDR")]
    pub connect_to: Option<SocketAddr>,
    /// HTTP method; the request never has a body.
    #[arg(long, default_value = "GET", value_parser = parse_method)]
    pub method: Method,
    /// Extra request header, "Name: value"; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Offer only this TLS version.
    #[arg(long, value_enum)]
    pub tls_version: Option<TlsVersion>,
    /// Key-exchange groups to offer, in preference order, comma-separated (x25519, p256, p384,
    /// x25519mlkem768). Default: rustls' list, which starts with the post-quantum hybrid
    /// X25519MLKEM768. Pin one group when comparing servers that differ in PQ support, or the
    /// comparison measures the key exchange rather than the server.
    #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
    pub kx_groups: Vec<String>,
    /// Print the summary as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// No live progress line on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_method(s: &str) -> Result<Method, String> {
    Method::from_bytes(s.as_bytes()).map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn parses_defaults_and_requires_trust() {
        let cli = Cli::try_parse_from([
            "bench",
            "https://localhost:8443/x?y",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--ca",
            "ca.pem",
        ])
        .unwrap();
        assert_eq!(cli.bench.mode, Mode::Handshake);
        assert_eq!(cli.bench.concurrency, 8);
        assert_eq!(cli.bench.duration, Duration::from_secs(10));
        assert_eq!(cli.bench.method, Method::GET);

        let missing = Cli::try_parse_from(["bench", "https://h/", "--cert", "c", "--key", "k"]);
        assert!(missing.is_err());
        let both = Cli::try_parse_from([
            "bench",
            "https://h/",
            "--cert",
            "c",
            "--key",
            "k",
            "--ca",
            "a",
            "--insecure",
        ]);
        assert!(both.is_err());
    }

    #[test]
    fn parses_modes_and_durations() {
        let cli = Cli::try_parse_from([
            "bench",
            "https://h/",
            "--cert",
            "c",
            "--key",
            "k",
            "--insecure",
            "--mode",
            "keepalive",
            "-c",
            "3",
            "-d",
            "0.5",
            "--timeout",
            "250ms",
            "--tls-version",
            "1.3",
            "-H",
            "X-A: b",
            "--kx-groups",
            "x25519,p256",
        ])
        .unwrap();
        assert_eq!(cli.bench.mode, Mode::Keepalive);
        assert_eq!(cli.bench.concurrency, 3);
        assert_eq!(cli.bench.duration, Duration::from_millis(500));
        assert_eq!(cli.bench.timeout, Duration::from_millis(250));
        assert_eq!(cli.bench.tls_version, Some(TlsVersion::Tls13));
        assert_eq!(cli.bench.kx_groups, ["x25519", "p256"]);
        assert!(
            Cli::try_parse_from([
                "bench",
                "https://h/",
                "--cert",
                "c",
                "--key",
                "k",
                "--insecure",
                "-c",
                "0"
            ])
            .is_err()
        );
    }
}
