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
        "`{name}` is needed by the revocation tests (apt-get install openssl python3 faketime)"
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
    /// `signer` (the CA itself or a delegated responder), answers valid `valid_minutes` minutes
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

/// One `openssl ocsp` response for `serial`, made offline (`-reqin`/`-respout`) from an index of
/// `entries` and signed by `signer`, valid `valid_minutes` (0: no nextUpdate). `clock`, when
/// given, is a `faketime` time spec (`-2d`, `+1d`) that the responder runs at, to make answers
/// from the past or the future. Served as a file by [`CdpServer`] (which answers POST too).
pub fn ocsp_response(
    ca: &Authority,
    entries: &[Revoked<'_>],
    signer: &Issued,
    serial: u64,
    valid_minutes: u32,
    clock: Option<&str>,
) -> Vec<u8> {
    tool("openssl");
    let openssl_ca = OpensslCa::new(ca);
    openssl_ca.write_index(entries);
    let dir = openssl_ca.path();
    std::fs::write(dir.join("index.txt.attr"), "unique_subject = no\n").unwrap();
    std::fs::write(dir.join("signer.pem"), &signer.cert_pem).unwrap();
    std::fs::write(dir.join("signer.key"), &signer.key_pem).unwrap();
    let status = Command::new("openssl")
        .current_dir(dir)
        .args([
            "ocsp",
            "-issuer",
            "ca.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
        ])
        .args(["-serial", &format!("0x{serial:X}")])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl ocsp -reqout failed");
    let mut cmd = match clock {
        Some(spec) => {
            tool("faketime");
            let mut cmd = Command::new("faketime");
            cmd.args(["-f", spec, "openssl"]);
            cmd
        }
        None => Command::new("openssl"),
    };
    cmd.current_dir(dir)
        .args(["ocsp", "-index", "index.txt", "-CA", "ca.pem"])
        .args(["-rsigner", "signer.pem", "-rkey", "signer.key"])
        .args(["-reqin", "req.der", "-respout", "resp.der"]);
    if valid_minutes > 0 {
        cmd.args(["-nmin", &valid_minutes.to_string()]);
    }
    if signer.der == ca.der {
        // A CA-signed answer needs no certificate: the signature is then its last field.
        cmd.arg("-resp_no_certs");
    }
    let status = cmd.stdout(Stdio::null()).status().unwrap();
    assert!(status.success(), "openssl ocsp -respout failed");
    std::fs::read(dir.join("resp.der")).unwrap()
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

/// A site that requires a certificate and lets any valid one through anonymously, so the
/// answer is 200 or the revocation page. `{extra}` goes into `[site.revocation]`,
/// `{state}` is the revocation state directory.
pub const SITE: &str = r#"
[server]
listen = ["127.0.0.1:0"]
backend_response_timeout = "2s"

[revocation]
state_dir = "{state}"
max_crl_bytes = 1048576

[[site]]
name = "Default Web Site"
host_names = ["localhost"]
certificate = "server.crt"
private_key = "server.key"
client_ca = ["ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
anonymous_authentication = true
backend = "http://{backend}"

[site.revocation]
url_retrieval_timeout = "2s"
{extra}
"#;

/// [`SITE`] with its state directory and `[site.revocation]` lines.
pub fn site_config(state: &Path, extra: &str) -> String {
    SITE.replace("{state}", &state.display().to_string())
        .replace("{extra}", extra)
}

/// A client certificate of the test CA with this serial, CDPs and OCSP responders.
pub fn client_cert(
    pki: &super::Pki,
    name: &str,
    serial: u64,
    cdps: &[String],
    ocsp: &[String],
) -> Issued {
    let mut spec = certgate::pki::ClientSpec::new(name);
    spec.serial = Some(serial);
    spec.crl_distribution_points = cdps.to_vec();
    spec.ocsp_responders = ocsp.to_vec();
    pki.ca.client(&spec).unwrap()
}

/// What the proxy at `env` answers `who` (`200` or `status.substatus`).
pub async fn code(env: &super::Env, who: &Issued) -> String {
    env.client(Some(who)).get(env.addr(), "/").await.code()
}

/// `certgate explain` (with fetching) for `who` at `env`'s configuration: its verdict code and
/// the chain detail that says which source decided.
pub async fn explain(env: &super::Env, who: &Issued) -> (String, String) {
    let runtime = certgate::config::Runtime::load(
        &env.config_path(),
        &certgate::tls::server::ResumptionKeys::default(),
    )
    .unwrap();
    let target = certgate::explain::Target {
        host: Some("localhost"),
        site: None,
        path: "/",
    };
    let e = certgate::explain::explain_with_revocation(
        &runtime,
        std::slice::from_ref(&who.der),
        &target,
    )
    .await
    .unwrap();
    (e.verdict.code, e.chain.detail.unwrap_or_default())
}
