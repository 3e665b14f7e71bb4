//! TLS termination: one crypto provider, file loading, per-site server configs, and the
//! classification of client certificates into IIS answers.

pub mod accept;
pub mod cipher_suites;
pub mod client_auth;
pub mod coalesce;
pub mod server;
pub mod ticket_keys;
mod verified_chains;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

/// The process's single crypto provider (aws-lc-rs). Building it is not free and every config
/// must use the same one, so it is made once and shared.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())))
}

/// A file that could not be turned into TLS material. The message is what a person needs to fix
/// the file; the caller adds the file name and the config key.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The resolved path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The contents are not what the key expects.
    #[error("{path}: {reason}")]
    Invalid {
        /// The resolved path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn invalid(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn is_pem(data: &[u8]) -> bool {
    data.windows(10).any(|w| w == b"-----BEGIN")
}

/// Certificates from a PEM file (any number) or a DER file (one).
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let data = read(path)?;
    if !is_pem(&data) {
        return if data.first() == Some(&0x30) {
            Ok(vec![CertificateDer::from(data)])
        } else {
            Err(invalid(path, "neither PEM nor DER certificate data"))
        };
    }
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// A private key from PEM (PKCS#8, PKCS#1 or SEC1) or DER (PKCS#8).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, LoadError> {
    let data = read(path)?;
    if is_pem(&data) {
        PrivateKeyDer::from_pem_slice(&data)
            .map_err(|e| invalid(path, format!("no usable private key: {e}")))
    } else {
        PrivateKeyDer::try_from(data).map_err(|e| invalid(path, format!("bad DER key: {e}")))
    }
}

/// Revocation lists from PEM (any number) or DER (one).
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, LoadError> {
    let data = read(path)?;
    if !is_pem(&data) {
        return Ok(vec![CertificateRevocationListDer::from(data)]);
    }
    let crls = CertificateRevocationListDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, format!("bad PEM CRL: {e}")))?;
    if crls.is_empty() {
        return Err(invalid(path, "no X509 CRL block found"));
    }
    Ok(crls)
}

/// Key and chain from a PKCS#12 (`.pfx`) file, as IIS exports them.
pub fn load_pfx(
    path: &Path,
    password: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), LoadError> {
    let data = read(path)?;
    let store = p12_keystore::KeyStore::from_pkcs12(
        &data,
        password,
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| invalid(path, format!("cannot open PFX (wrong password?): {e}")))?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| invalid(path, "the PFX holds no private key"))?;
    let certs: Vec<CertificateDer<'static>> = chain
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err(invalid(path, "the PFX holds no certificate for its key"));
    }
    let key = PrivateKeyDer::try_from(chain.key().as_der().to_vec())
        .map_err(|e| invalid(path, format!("unusable key in PFX: {e}")))?;
    Ok((certs, key))
}
