//! The server's cipher-suite order (`[server] cipher_suites`), which wins over the client's, as
//! in SChannel's "SSL Cipher Suite Order".
//!
//! The default puts AES-128-GCM first. A `*_SHA384` suite runs the whole TLS 1.3 key schedule
//! and handshake transcript through SHA-384, which x86 CPUs have no instructions for (SHA-256
//! has them). On the 2-core test VM that was about a tenth of the server CPU of a full mTLS
//! handshake with curl as the client (README, "Performance"). AES-128 already matches the
//! 128-bit strength of the P-256 and X25519 key exchange, so AES-256 first buys nothing for
//! those keys. Sites bound to AES-256 (CNSA, some agency baselines) list it first.
//!
//! Clients still choose among the suites they offer: an old client without AES-GCM gets
//! ChaCha20 if it is listed. A suite not listed is never negotiated.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs::ALL_CIPHER_SUITES;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::{ServerConfig, SupportedCipherSuite};

/// The order used when `cipher_suites` is not set, in IANA names.
pub const DEFAULT_ORDER: [&str; 9] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// A suite's IANA name (`TLS_AES_128_GCM_SHA256`), the spelling Windows and the RFCs use.
pub fn iana_name(suite: SupportedCipherSuite) -> String {
    let name = suite.suite().as_str().unwrap_or("unknown");
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_owned(),
    }
}

/// The suite with this IANA name, or rustls's spelling of it (`TLS13_AES_128_GCM_SHA256`),
/// in any letter case.
fn by_name(name: &str) -> Option<SupportedCipherSuite> {
    let wanted = name.trim().to_ascii_uppercase();
    ALL_CIPHER_SUITES
        .iter()
        .copied()
        .find(|s| iana_name(*s) == wanted || s.suite().as_str().is_some_and(|n| n == wanted))
}

/// A list that cannot be used, with the index of the entry at fault where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherSuiteError {
    /// A name that is not a suite certgate offers.
    #[error("`{name}` is not a cipher suite certgate offers; use one of: {}", known().join(", "))]
    Unknown {
        /// Index in the list.
        index: usize,
        /// The name as written.
        name: String,
    },
    /// The same suite twice.
    #[error("`{name}` is listed twice (also at [{first}])")]
    Duplicate {
        /// Index of the second mention.
        index: usize,
        /// Index of the first.
        first: usize,
        /// The name as written.
        name: String,
    },
    /// No TLS 1.3 suite: every modern client would fail the handshake.
    #[error(
        "no TLS 1.3 suite is listed, so TLS 1.3 clients could not connect; add e.g. TLS_AES_128_GCM_SHA256"
    )]
    NoTls13,
}

impl CipherSuiteError {
    /// The entry at fault, if the error is about one entry.
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::Unknown { index, .. } | Self::Duplicate { index, .. } => Some(*index),
            Self::NoTls13 => None,
        }
    }
}

fn known() -> Vec<String> {
    ALL_CIPHER_SUITES.iter().map(|s| iana_name(*s)).collect()
}

/// Parses the configured order. TLS 1.2 stays on only if a TLS 1.2 suite is listed.
pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Vec<SupportedCipherSuite>, CipherSuiteError> {
    let mut suites: Vec<SupportedCipherSuite> = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let name = name.as_ref();
        let suite = by_name(name).ok_or_else(|| CipherSuiteError::Unknown {
            index,
            name: name.to_owned(),
        })?;
        if let Some(first) = suites.iter().position(|s| s.suite() == suite.suite()) {
            return Err(CipherSuiteError::Duplicate {
                index,
                first,
                name: name.to_owned(),
            });
        }
        suites.push(suite);
    }
    if !suites.iter().any(|s| s.tls13().is_some()) {
        return Err(CipherSuiteError::NoTls13);
    }
    Ok(suites)
}

/// The default order, parsed.
pub fn default_order() -> Vec<SupportedCipherSuite> {
    // The constant is checked by a test; an entry that failed would only be left out.
    DEFAULT_ORDER.iter().filter_map(|n| by_name(n)).collect()
}

/// The process's crypto provider with the suites in this order, for server configs.
pub fn server_provider(suites: Vec<SupportedCipherSuite>) -> Arc<CryptoProvider> {
    let mut provider = (*super::provider()).clone();
    provider.cipher_suites = suites;
    Arc::new(provider)
}

/// A server config with `provider`'s suites in the server's order, which wins over the
/// client's; TLS 1.3, and TLS 1.2 if a TLS 1.2 suite is listed. Every server config certgate
/// builds (sites, the admin listener) starts here, so none follows the client's order.
pub fn ordered_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ClientCertVerifier>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    let versions = versions(&provider);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.ignore_client_order = true;
    Ok(config)
}

/// The protocol versions the suites allow: TLS 1.3, and TLS 1.2 if a TLS 1.2 suite is listed.
fn versions(provider: &CryptoProvider) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static BOTH: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    if provider.cipher_suites.iter().any(|s| s.tls13().is_none()) {
        &BOTH
    } else {
        &TLS13_ONLY
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_default_order_names_only_known_suites_aes_128_first() {
        let parsed = parse(&DEFAULT_ORDER).unwrap();
        assert_eq!(parsed.len(), DEFAULT_ORDER.len());
        assert_eq!(default_order().len(), DEFAULT_ORDER.len());
        let names: Vec<String> = parsed.iter().map(|s| iana_name(*s)).collect();
        assert_eq!(names, DEFAULT_ORDER);
        assert_eq!(names[0], "TLS_AES_128_GCM_SHA256");
    }

    #[test]
    fn iana_and_rustls_spellings_in_any_case_are_accepted() {
        let parsed = parse(&[
            "tls_aes_256_gcm_sha384",
            "TLS13_CHACHA20_POLY1305_SHA256",
            " TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 ",
        ])
        .unwrap();
        let names: Vec<String> = parsed.iter().map(|s| iana_name(*s)).collect();
        assert_eq!(
            names,
            [
                "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
            ]
        );
    }

    #[test]
    fn unknown_duplicate_and_tls12_only_lists_are_refused_with_the_entry() {
        let unknown =
            parse(&["TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"]).unwrap_err();
        assert_eq!(unknown.index(), Some(1));
        let text = unknown.to_string();
        assert!(
            text.contains("`ECDHE-ECDSA-AES128-GCM-SHA256` is not a cipher suite"),
            "{text}"
        );
        assert!(text.contains("TLS_AES_128_GCM_SHA256"), "{text}");

        let twice = parse(&["TLS_AES_128_GCM_SHA256", "tls13_aes_128_gcm_sha256"]).unwrap_err();
        assert_eq!(
            twice,
            CipherSuiteError::Duplicate {
                index: 1,
                first: 0,
                name: "tls13_aes_128_gcm_sha256".into()
            }
        );

        let none = parse(&["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]).unwrap_err();
        assert_eq!(none, CipherSuiteError::NoTls13);
        assert_eq!(parse::<&str>(&[]).unwrap_err(), CipherSuiteError::NoTls13);
    }

    #[test]
    fn tls_1_2_is_offered_only_when_a_tls_1_2_suite_is_listed() {
        let only13 = server_provider(parse(&["TLS_AES_128_GCM_SHA256"]).unwrap());
        assert_eq!(versions(&only13).len(), 1);
        let both = server_provider(default_order());
        assert_eq!(versions(&both).len(), 2);
    }
}
