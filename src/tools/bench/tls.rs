//! The load generator's rustls client configuration.
//!
//! One `ClientConfig` is built per run and shared by every worker, so in `resume` mode all
//! connections draw tickets from one session store (what a fleet of browsers behind one NAT does
//! not do, but what a single busy API client does). `handshake` mode turns resumption off so
//! every connection pays for a full handshake.

use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{BenchError, Mode, TlsVersion};

/// What decides whether the server's certificate is acceptable.
pub(super) enum Trust<'a> {
    /// Verify the chain against these CA files and the name against the SNI.
    Roots(&'a Path),
    /// Skip chain and name checks; see [`AcceptAnyServerCert`].
    Insecure,
}

/// Builds the shared client config for one run.
pub(super) fn client_config(
    trust: Trust<'_>,
    cert: &Path,
    key: &Path,
    mode: Mode,
    version: Option<TlsVersion>,
    kx_groups: &[String],
    sessions: usize,
) -> Result<ClientConfig, BenchError> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if !kx_groups.is_empty() {
        provider.kx_groups = select_kx_groups(&provider.kx_groups, kx_groups)?;
    }
    let provider = Arc::new(provider);
    let versions: &[&'static rustls::SupportedProtocolVersion] = match version {
        None => rustls::DEFAULT_VERSIONS,
        Some(TlsVersion::Tls12) => &[&rustls::version::TLS12],
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(BenchError::Tls)?;
    let builder = match trust {
        Trust::Roots(ca) => {
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(read_certs(ca)?);
            if added == 0 || ignored > 0 {
                return Err(BenchError::BadCa {
                    path: ca.to_owned(),
                    added,
                    ignored,
                });
            }
            builder.with_root_certificates(roots)
        }
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert {
                algorithms: provider.signature_verification_algorithms,
            })),
    };
    let chain = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| BenchError::Pem {
        path: key.to_owned(),
        source,
    })?;
    let mut config = builder
        .with_client_auth_cert(chain, key)
        .map_err(BenchError::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = match mode {
        Mode::Handshake => Resumption::disabled(),
        Mode::Resume | Mode::Keepalive => Resumption::in_memory_sessions(sessions),
    };
    Ok(config)
}

/// The provider's groups named in `names`, in that order (the first one gets a key share).
/// Names are rustls' `NamedGroup` names, case-insensitive, plus `p256`/`p384`/`p521`.
fn select_kx_groups(
    available: &[&'static dyn SupportedKxGroup],
    names: &[String],
) -> Result<Vec<&'static dyn SupportedKxGroup>, BenchError> {
    names
        .iter()
        .map(|name| {
            let wanted = match name.to_ascii_lowercase().as_str() {
                "p256" | "p-256" => "secp256r1".to_owned(),
                "p384" | "p-384" => "secp384r1".to_owned(),
                "p521" | "p-521" => "secp521r1".to_owned(),
                other => other.to_owned(),
            };
            available
                .iter()
                .find(|g| format!("{:?}", g.name()).eq_ignore_ascii_case(&wanted))
                .copied()
                .ok_or_else(|| BenchError::KxGroup {
                    name: name.clone(),
                    available: available
                        .iter()
                        .map(|g| format!("{:?}", g.name()))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        })
        .collect()
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, BenchError> {
    let pem_error = |source| BenchError::Pem {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(BenchError::NoCertificates(path.to_owned()));
    }
    Ok(certs)
}

/// `--insecure`: accepts any server certificate chain and name, but still checks the handshake
/// signature with the server's key, so the client does the same public-key work per handshake as
/// a verifying client minus the chain walk. Never use it to judge whether a server is set up
/// correctly; it only measures.
#[derive(Debug)]
pub(super) struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
