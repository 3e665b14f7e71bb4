//! Real revocation infrastructure for the tests: CRLs made by `openssl ca -gencrl` (base and
//! delta, with hold and removeFromCRL entries), a CRL distribution point process
//! (`cdp_server.py`, which can also be slow, huge, garbage or a redirect loop) and an
//! `openssl ocsp` responder.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use certgate::pki::{Authority, Issued};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

fn tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is needed by the revocation tests (apt-get install openssl python3)"
    );
}

/// One revoked entry for `openssl ca`'s index: serial and reason (`keyCompromise`,
/// `certificateHold`, `removeFromCRL`, ...).
pub type Revoked<'a> = (u64, &'a str);

/// What a generated CRL says about itself.
pub struct CrlSpec<'a> {
    pub entries: &'a [Revoked<'a>],
    pub number: u64,
    /// Some(base number): a delta CRL.
    pub delta_of: Option<u64>,
    /// Freshest CRL (delta) URL to name in a base CRL.
    pub freshest: Option<String>,
    /// thisUpdate and nextUpdate relative to now, seconds.
    pub this_update: i64,
    pub next_update: i64,
}

impl Default for CrlSpec<'_> {
    fn default() -> Self {
        Self {
            entries: &[],
            number: 1,
            delta_of: None,
            freshest: None,
            this_update: -60,
            next_update: 7 * 86_400,
        }
    }
}

/// A CA whose CRLs `openssl ca` signs.
pub struct OpensslCa {
    dir: tempfile::TempDir,
}

fn asn1_time(offset: i64) -> String {
    let t = OffsetDateTime::now_utc() + time::Duration::seconds(offset);
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        t.year() % 100,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Hex with an even number of digits, as openssl's index wants.
fn even_hex(serial: u64) -> String {
    let hex = format!("{serial:X}");
    if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex
    }
}

impl OpensslCa {
    pub fn new(ca: &Authority) -> Self {
        tool("openssl");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca.cert_pem).unwrap();
        std::fs::write(dir.path().join("ca.key"), ca.key_pem()).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the openssl index for `entries`.
    pub fn write_index(&self, entries: &[Revoked<'_>]) {
        let mut index = String::new();
        for (serial, reason) in entries {
            let serial = even_hex(*serial);
            if *reason == "valid" {
                index.push_str(&format!(
                    "V\t{}\t\t{serial}\tunknown\t/CN=s{serial}\n",
                    asn1_time(365 * 86_400)
                ));
                continue;
            }
            let reason = if *reason == "certificateHold" {
                "certificateHold,holdInstructionReject".to_owned()
            } else {
                (*reason).to_owned()
            };
            index.push_str(&format!(
                "R\t{}\t{},{reason}\t{serial}\tunknown\t/CN=s{serial}\n",
                asn1_time(365 * 86_400),
                asn1_time(-3600),
            ));
        }
        std::fs::write(self.path().join("index.txt"), index).unwrap();
    }

    /// A DER CRL as `spec` says, written to `out` (atomically).
    pub fn crl(&self, spec: &CrlSpec<'_>, out: &Path) {
        self.write_index(spec.entries);
        let dir = self.path();
        std::fs::write(dir.join("crlnumber"), format!("{:02X}\n", spec.number)).unwrap();
        let mut exts = String::from("authorityKeyIdentifier = keyid:always\n");
        if let Some(base) = spec.delta_of {
            exts.push_str(&format!("deltaCRL = critical,DER:02:01:{base:02X}\n"));
        }
        if let Some(url) = &spec.freshest {
            exts.push_str(&format!("freshestCRL = URI:{url}\n"));
        }
        std::fs::write(
            dir.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
                 default_md = sha256\ncrl_extensions = crlext\n[crlext]\n{exts}"
            ),
        )
        .unwrap();
        let pem = dir.join("out.pem");
        let status = Command::new("openssl")
            .current_dir(dir)
            .args(["ca", "-batch", "-config", "ca.cnf", "-gencrl"])
            .args(["-keyfile", "ca.key", "-cert", "ca.pem", "-out"])
            .arg(&pem)
            .args(["-crl_lastupdate", &asn1_time(spec.this_update)])
            .args(["-crl_nextupdate", &asn1_time(spec.next_update)])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl ca -gencrl failed");
        let tmp = out.with_extension("tmp");
        let status = Command::new("openssl")
            .args(["crl", "-in"])
            .arg(&pem)
            .args(["-outform", "DER", "-out"])
            .arg(&tmp)
            .status()
            .unwrap();
        assert!(status.success(), "openssl crl -outform DER failed");
        std::fs::rename(&tmp, out).unwrap();
    }
}

/// The CRL distribution point process, killed on drop.
pub struct CdpServer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl CdpServer {
    /// Serves `dir` on an ephemeral port (or `port`).
    pub fn start(dir: &Path, port: u16) -> Self {
        tool("python3");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/cdp_server.py");
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(script)
            .arg(dir)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("cdp_server.py said {line:?}"));
        Self {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for CdpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `openssl ocsp` answering for a CA from an index, signed by `signer`; killed on drop.
pub struct OcspResponder {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl OcspResponder {
    /// Starts a responder for `ca` (its index written from `entries`), signing with
    /// `signer` (the CA itself or a delegated responder), answers valid `ndays` days
    /// (0: no nextUpdate).
    pub fn start(
        ca: &Authority,
        entries: &[Revoked<'_>],
        signer: &Issued,
        valid_minutes: u32,
    ) -> Self {
        tool("openssl");
        let openssl_ca = OpensslCa::new(ca);
        openssl_ca.write_index(entries);
        let dir = openssl_ca.dir;
        std::fs::write(dir.path().join("index.txt.attr"), "unique_subject = no\n").unwrap();
        std::fs::write(dir.path().join("signer.pem"), &signer.cert_pem).unwrap();
        std::fs::write(dir.path().join("signer.key"), &signer.key_pem).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new("openssl");
        cmd.current_dir(dir.path())
            .args(["ocsp", "-index", "index.txt", "-port", &port.to_string()])
            .args([
                "-rsigner",
                "signer.pem",
                "-rkey",
                "signer.key",
                "-CA",
                "ca.pem",
            ])
            .args(["-ignore_err"]);
        if valid_minutes > 0 {
            cmd.args(["-nmin", &valid_minutes.to_string()]);
        }
        // Wait for its ACCEPT line rather than probing the port: openssl 3.0's responder
        // stalls on a connection that closes without a request.
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("ACCEPT"), "openssl ocsp said {line:?}");
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client presenting `chain` (leaf first) with `key_pem`.
pub fn client_with_chain(
    ca_pem: &str,
    chain: Vec<CertificateDer<'static>>,
    key_pem: &str,
) -> super::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(certgate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            chain,
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    super::Client {
        config: Arc::new(config),
    }
}
