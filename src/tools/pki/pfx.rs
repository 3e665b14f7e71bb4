//! PKCS#12 (`.pfx`) files of issued certificates, for importing into a browser or Windows.

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
    PrivateKeyChain,
};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

use super::Issued;

/// Why a PFX could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the PFX: {0}")]
pub struct PfxError(String);

impl Issued {
    /// The certificate and its key as a password-protected PFX whose friendly name is `name`
    /// (what the browser's certificate prompt and Windows' certificate manager show).
    ///
    /// Encrypted with 3DES and a SHA-1 MAC, the combination every importer reads: Windows
    /// before 10 1709 and macOS's keychain before 15 refuse AES-256 (PBES2) PFX files, which is
    /// what IIS's own "Export" offers as "TripleDES-SHA1" for the same reason.
    pub fn to_pfx(&self, name: &str, password: &str) -> Result<Vec<u8>, PfxError> {
        let err = |e: &dyn std::fmt::Display| PfxError(e.to_string());
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| err(&e))?;
        let chain = PrivateKeyChain::new(
            crate::identity::sha1(self.der.as_ref()).to_vec(),
            PrivateKey::from_der(key.secret_der()).map_err(|e| err(&e))?,
            [Certificate::from_der(self.der.as_ref()).map_err(|e| err(&e))?],
        );
        let mut store = KeyStore::new();
        store.add_entry(name, KeyStoreEntry::PrivateKeyChain(chain));
        store
            .writer(password)
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1)
            .write()
            .map_err(|e| err(&e))
    }
}

/// A password for a throwaway PFX: 16 characters without look-alikes (`0`/`O`, `1`/`l`).
pub fn random_password() -> Result<String, PfxError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // Bytes at or above the largest multiple of the alphabet's size are dropped (no bias).
    let limit = 256 - 256 % ALPHABET.len();
    let mut password = String::with_capacity(16);
    while password.len() < 16 {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PfxError("no randomness".into()))?;
        for b in bytes.iter().map(|b| usize::from(*b)).filter(|b| *b < limit) {
            if password.len() < 16 {
                password.push(char::from(ALPHABET[b % ALPHABET.len()]));
            }
        }
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pki::{Authority, ClientSpec};

    #[test]
    fn the_pfx_opens_with_its_password_and_holds_the_key_and_certificate() {
        let ca = Authority::new("CA").unwrap();
        let alice = ca.client(&ClientSpec::new("alice")).unwrap();
        let password = random_password().unwrap();
        assert_eq!(password.len(), 16);
        let pfx = alice.to_pfx("alice", &password).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.pfx");
        std::fs::write(&path, pfx).unwrap();
        let (certs, key) = crate::tls::load_pfx(&path, &password).unwrap();
        assert_eq!(certs, vec![alice.der.clone()]);
        let expected = PrivateKeyDer::from_pem_slice(alice.key_pem.as_bytes()).unwrap();
        assert_eq!(key.secret_der(), expected.secret_der());
        assert!(crate::tls::load_pfx(&path, "wrong").is_err());
    }
}
