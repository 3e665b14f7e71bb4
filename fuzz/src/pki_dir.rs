//! A throwaway PKI written once per fuzzing process into a temporary directory, so the
//! configuration target can load configurations that name real files (`ca.crt`, `server.crt`,
//! `server.key`, `alice.crt`, `ca.crl`) and get past file loading into validation.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use certgate::tools::pki::{Authority, ClientSpec};

/// The directory holding the PKI files; created on first use.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("certgate-fuzz-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz PKI directory");
        let ca = Authority::new("Fuzz CA").expect("CA");
        let server = ca.server(&["localhost", "127.0.0.1"]).expect("server cert");
        let mut spec = ClientSpec::new("alice");
        spec.organizational_units = vec!["Engineering".into()];
        spec.upn = Some("alice@example.test".into());
        let alice = ca.client(&spec).expect("client cert");
        let crl = ca.crl(&[7], 30).expect("CRL");
        for (name, contents) in [
            ("ca.crt", ca.cert_pem.as_bytes()),
            ("server.crt", server.cert_pem.as_bytes()),
            ("server.key", server.key_pem.as_bytes()),
            ("alice.crt", alice.cert_pem.as_bytes()),
            ("alice.der", alice.der.as_ref()),
            ("ca.crl", crl.as_bytes()),
        ] {
            std::fs::write(dir.join(name), contents).expect("write a fuzz PKI file");
        }
        dir
    })
}
