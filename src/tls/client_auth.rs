//! Client-certificate policy for one site.
//!
//! IIS reports certificate problems as HTTP pages (403.7, 403.13, 403.16, 403.17) rather than TLS
//! alerts, so a browser shows something a person can act on. To do the same, the handshake only
//! proves possession of the key (the CertificateVerify signature is always checked) and the
//! chain is judged right after the handshake by the same WebPKI verifier rustls would use. That
//! post-handshake check also runs on resumed sessions, so a CRL loaded after a ticket was issued
//! still revokes the identity it carries.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    SignatureScheme,
};

use super::verified_chains::VerifiedChains;
use crate::chain_cache::ChainKey;
use crate::identity::CertFacts;
use crate::iis::IisStatus;
use crate::revocation::{Report, Revocation, Verdict as RevocationVerdict};

/// Where certificate problems are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorReporting {
    /// IIS pages at the HTTP layer (default).
    #[default]
    Http,
    /// A TLS alert during the handshake.
    Tls,
}

/// The verdict on a connection's client certificate, reached once per connection.
#[derive(Debug, Clone)]
pub enum ClientCert {
    /// The client sent no certificate.
    Absent,
    /// The certificate failed validation; `status` is the IIS answer.
    Rejected {
        /// 403.13, 403.16 or 403.17.
        status: IisStatus,
        /// The validator's reason, for logs only.
        detail: String,
        /// What could be read from the certificate, if it parses.
        facts: Option<Arc<CertFacts>>,
    },
    /// The chain is trusted, in date and not revoked.
    Valid(Arc<CertFacts>),
}

impl ClientCert {
    /// The parsed certificate, valid or not.
    pub fn facts(&self) -> Option<&Arc<CertFacts>> {
        match self {
            Self::Absent => None,
            Self::Rejected { facts, .. } => facts.as_ref(),
            Self::Valid(facts) => Some(facts),
        }
    }
}

/// The site's [`ClientCertVerifier`]: asks for a certificate when any scope of the site wants
/// one, and defers the chain verdict to [`ClientAuth::classify`] unless errors are reported in
/// TLS.
#[derive(Debug)]
pub struct ClientAuth {
    webpki: Option<Arc<dyn ClientCertVerifier>>,
    signatures: rustls::crypto::WebPkiSupportedAlgorithms,
    offer: bool,
    mandatory: bool,
    reporting: ErrorReporting,
    revocation: Option<Arc<Revocation>>,
    fingerprint: [u8; 32],
    /// Chains webpki accepted, so a returning client's chain is not verified again.
    verified: VerifiedChains,
}

impl ClientAuth {
    /// A policy that never asks for a certificate (every scope of the site ignores them).
    pub fn disabled() -> Self {
        Self {
            webpki: None,
            signatures: super::provider().signature_verification_algorithms,
            offer: false,
            mandatory: false,
            reporting: ErrorReporting::Http,
            revocation: None,
            fingerprint: trust_fingerprint(
                &RootCertStore::empty(),
                None,
                ErrorReporting::Http,
                false,
            ),
            verified: VerifiedChains::default(),
        }
    }

    /// A policy that requests a certificate. `mandatory` only has an effect with
    /// [`ErrorReporting::Tls`]; with HTTP reporting a missing certificate becomes 403.7.
    pub fn new(
        roots: RootCertStore,
        revocation: Option<Arc<Revocation>>,
        reporting: ErrorReporting,
        mandatory: bool,
    ) -> Result<Self, VerifierBuilderError> {
        let provider = super::provider();
        let fingerprint = trust_fingerprint(&roots, revocation.as_deref(), reporting, mandatory);
        // Revocation is not webpki's job here: it is checked after the handshake by
        // [`crate::revocation`], which can fetch, cache and explain.
        let webpki =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .allow_unauthenticated()
                .build()?;
        Ok(Self {
            webpki: Some(webpki),
            signatures: provider.signature_verification_algorithms,
            offer: true,
            mandatory: mandatory && reporting == ErrorReporting::Tls,
            reporting,
            revocation,
            fingerprint,
            verified: VerifiedChains::default(),
        })
    }

    /// webpki's verdict on a chain, from [`VerifiedChains`] when this exact chain verified
    /// before and is still in date. `Ok` carries the leaf's facts, kept with the chain (`None`
    /// only if x509-parser cannot read a leaf webpki accepted).
    fn verify_chain(
        &self,
        webpki: &dyn ClientCertVerifier,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Option<Arc<CertFacts>>, Error> {
        let key = ChainKey::of(leaf, intermediates);
        if let Some(facts) = self.verified.get(&key, now) {
            return Ok(Some(facts));
        }
        webpki.verify_client_cert(leaf, intermediates, now)?;
        let facts = CertFacts::parse(leaf).ok().map(Arc::new);
        if let Some(facts) = &facts {
            self.verified.insert(key, Arc::clone(facts), intermediates);
        }
        Ok(facts)
    }

    /// Chain verifications answered from the chains verified before, and those that ran webpki.
    pub fn verified_chain_counts(&self) -> (u64, u64) {
        self.verified.counts()
    }

    /// The site's revocation checker, when client certificates are requested.
    pub fn revocation(&self) -> Option<&Arc<Revocation>> {
        self.revocation.as_ref()
    }

    /// Checks the revocation status of a chain whose `verdict` is [`ClientCert::Valid`]; a
    /// revoked chain, or one whose status cannot be determined under `unknown_status = "deny"`,
    /// becomes 403.13. Other verdicts pass through unchanged.
    pub async fn check_revocation(
        &self,
        chain: Option<&[CertificateDer<'static>]>,
        verdict: ClientCert,
    ) -> ClientCert {
        let (ClientCert::Valid(_), Some(revocation), Some(chain)) =
            (&verdict, &self.revocation, chain)
        else {
            return verdict;
        };
        let report = revocation.check(chain).await;
        tracing::debug!(verdict = ?report.verdict, detail = %report.summary(), "revocation checked");
        apply_revocation(verdict, &report)
    }

    /// SHA-256 over what decides whether a presented chain is trusted: the client CAs (subject,
    /// key, name constraints), the revocation policy and where errors are reported. Session
    /// ticket keys are bound to it, so a session from before a trust change never resumes. CRL
    /// contents and mappings are not part of it: both are applied again after every handshake,
    /// resumed ones included, so a new CRL or mapping reaches resumed sessions at once.
    pub fn trust_fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// [`Self::classify`] for a connection's chain right after its handshake. With
    /// [`ErrorReporting::Tls`] a full handshake has just verified the chain (the handshake
    /// fails otherwise), so it is not verified a second time; a resumed session's chain is.
    pub fn classify_handshake(
        &self,
        chain: Option<&[CertificateDer<'static>]>,
        full_handshake: bool,
    ) -> ClientCert {
        if !(full_handshake && self.reporting == ErrorReporting::Tls && self.webpki.is_some()) {
            return self.classify(chain);
        }
        let Some((leaf, intermediates)) = chain.and_then(<[_]>::split_first) else {
            return ClientCert::Absent;
        };
        // The handshake's verifier kept the chain with its leaf's facts just now.
        let kept = self
            .verified
            .get(&ChainKey::of(leaf, intermediates), UnixTime::now());
        verified(kept.or_else(|| CertFacts::parse(leaf).ok().map(Arc::new)))
    }

    /// Judges the chain a client presented (leaf first) and maps any failure to its IIS status.
    pub fn classify(&self, chain: Option<&[CertificateDer<'static>]>) -> ClientCert {
        self.classify_at(chain, UnixTime::now())
    }

    /// [`Self::classify`] at `now`.
    pub fn classify_at(
        &self,
        chain: Option<&[CertificateDer<'static>]>,
        now: UnixTime,
    ) -> ClientCert {
        let Some((leaf, intermediates)) = chain.and_then(<[_]>::split_first) else {
            return ClientCert::Absent;
        };
        let Some(webpki) = &self.webpki else {
            // Certificates were never requested; a client cannot have sent one.
            return ClientCert::Absent;
        };
        match self.verify_chain(webpki.as_ref(), leaf, intermediates, now) {
            Ok(facts) => verified(facts),
            Err(err) => ClientCert::Rejected {
                status: status_for(&err),
                detail: err.to_string(),
                facts: CertFacts::parse(leaf).ok().map(Arc::new),
            },
        }
    }
}

/// A [`ClientCert::Valid`] verdict after its revocation `report`: 403.13 when the chain is
/// revoked or its status unknown (under `unknown_status = "deny"`); anything else unchanged.
pub fn apply_revocation(verdict: ClientCert, report: &Report) -> ClientCert {
    match (verdict, report.verdict) {
        (verdict, RevocationVerdict::Good) => verdict,
        (ClientCert::Valid(facts), RevocationVerdict::Revoked | RevocationVerdict::Unknown) => {
            ClientCert::Rejected {
                status: IisStatus::CERT_REVOKED,
                detail: report.summary(),
                facts: Some(facts),
            }
        }
        (other, _) => other,
    }
}

fn trust_fingerprint(
    roots: &RootCertStore,
    revocation: Option<&Revocation>,
    reporting: ErrorReporting,
    mandatory: bool,
) -> [u8; 32] {
    let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut field = |bytes: &[u8]| {
        hash.update(&(bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(b"certgate trust v1");
    // The revocation policy (check scope, unknown status, cached only, freshness, ...).
    let policy = revocation.map(|r| format!("{:?}", r.policy()));
    field(policy.as_deref().unwrap_or("none").as_bytes());
    field(&[
        u8::from(reporting == ErrorReporting::Tls),
        u8::from(mandatory),
    ]);
    for anchor in &roots.roots {
        field(anchor.subject.as_ref());
        field(anchor.subject_public_key_info.as_ref());
        field(anchor.name_constraints.as_deref().unwrap_or_default());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.finish().as_ref());
    out
}

/// The verdict for a chain that verified: valid, unless its leaf cannot be read (webpki and
/// x509-parser disagree), which fails closed.
fn verified(facts: Option<Arc<CertFacts>>) -> ClientCert {
    match facts {
        Some(facts) => ClientCert::Valid(facts),
        None => ClientCert::Rejected {
            status: IisStatus::CERT_UNTRUSTED,
            detail: "certificate verified but could not be parsed".into(),
            facts: None,
        },
    }
}

/// IIS sub-status for a validation failure: 403.17 for time, 403.13 for revocation (including
/// "could not determine", as IIS does when a CRL is unobtainable), 403.16 for everything else.
pub fn status_for(err: &Error) -> IisStatus {
    match err {
        Error::InvalidCertificate(cert) => match cert {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => IisStatus::CERT_EXPIRED,
            CertificateError::Revoked
            | CertificateError::UnknownRevocationStatus
            | CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. } => IisStatus::CERT_REVOKED,
            _ => IisStatus::CERT_UNTRUSTED,
        },
        _ => IisStatus::CERT_UNTRUSTED,
    }
}

impl ClientCertVerifier for ClientAuth {
    fn offer_client_auth(&self) -> bool {
        self.offer
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.as_ref().map_or(&[], |w| w.root_hint_subjects())
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match (&self.webpki, self.reporting) {
            (Some(webpki), ErrorReporting::Tls) => self
                .verify_chain(webpki.as_ref(), end_entity, intermediates, now)
                .map(|_| ClientCertVerified::assertion()),
            (Some(_), ErrorReporting::Http) => Ok(ClientCertVerified::assertion()),
            (None, _) => Err(Error::General(
                "client certificates are not accepted".into(),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.signatures)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.signatures)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use std::time::Duration;

    use super::*;
    use crate::pki::{Authority, ClientSpec};

    fn policy(ca: &Authority, reporting: ErrorReporting) -> ClientAuth {
        let mut roots = RootCertStore::empty();
        roots.add(ca.der.clone()).unwrap();
        ClientAuth::new(roots, None, reporting, true).unwrap()
    }

    fn status(verdict: &ClientCert) -> Option<IisStatus> {
        match verdict {
            ClientCert::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    #[test]
    fn a_returning_chain_is_not_verified_again_but_is_still_judged_in_time() {
        let ca = Authority::new("Returning CA").unwrap();
        let chain = vec![ca.client(&ClientSpec::new("alice")).unwrap().der];
        let auth = policy(&ca, ErrorReporting::Http);
        let now = UnixTime::now();
        let verdicts: Vec<_> = (0..3)
            .map(|_| auth.classify_at(Some(&chain), now))
            .collect();
        let facts: Vec<_> = verdicts
            .iter()
            .map(|v| match v {
                ClientCert::Valid(facts) => Arc::clone(facts),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(auth.verified_chain_counts(), (2, 1), "webpki ran once");
        assert!(
            Arc::ptr_eq(&facts[0], &facts[1]) && Arc::ptr_eq(&facts[0], &facts[2]),
            "the leaf is parsed once, with the chain's first verification"
        );

        // Past the leaf's notAfter the kept verdict does not apply: webpki runs and says 403.17.
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
        let after = u64::try_from(leaf.validity().not_after.timestamp()).unwrap() + 1;
        let later = UnixTime::since_unix_epoch(Duration::from_secs(after));
        let verdict = auth.classify_at(Some(&chain), later);
        assert_eq!(status(&verdict), Some(IisStatus::CERT_EXPIRED));
        assert_eq!(auth.verified_chain_counts(), (2, 2));

        // A reloaded policy (new anchors or not) starts with nothing verified.
        let reloaded = policy(&ca, ErrorReporting::Http);
        assert!(matches!(
            reloaded.classify_at(Some(&chain), now),
            ClientCert::Valid(_)
        ));
        assert_eq!(reloaded.verified_chain_counts(), (0, 1));
    }

    #[test]
    fn a_refused_chain_is_refused_every_time() {
        let ca = Authority::new("Trusted CA").unwrap();
        let stranger = Authority::new("Trusted CA").unwrap();
        let chain = vec![stranger.client(&ClientSpec::new("mallory")).unwrap().der];
        for reporting in [ErrorReporting::Http, ErrorReporting::Tls] {
            let auth = policy(&ca, reporting);
            for _ in 0..2 {
                let verdict = auth.classify(Some(&chain));
                assert_eq!(status(&verdict), Some(IisStatus::CERT_UNTRUSTED));
                assert!(
                    auth.verify_client_cert(&chain[0], &[], UnixTime::now())
                        .is_err()
                        || reporting == ErrorReporting::Http
                );
            }
            assert_eq!(
                auth.verified_chain_counts().0,
                0,
                "{reporting:?}: nothing kept"
            );
        }
    }

    #[test]
    fn the_handshake_verifier_shares_the_verified_chains() {
        let ca = Authority::new("Handshake CA").unwrap();
        let leaf = ca.client(&ClientSpec::new("carol")).unwrap().der;
        let auth = policy(&ca, ErrorReporting::Tls);
        for _ in 0..2 {
            auth.verify_client_cert(&leaf, &[], UnixTime::now())
                .unwrap();
        }
        assert_eq!(auth.verified_chain_counts(), (1, 1));
        // After a full handshake the verdict takes the facts kept by the handshake's verifier.
        let chain = [leaf];
        let (ClientCert::Valid(first), ClientCert::Valid(second)) = (
            auth.classify_handshake(Some(&chain), true),
            auth.classify_handshake(Some(&chain), true),
        ) else {
            panic!("a verified chain is valid");
        };
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(
            auth.verified_chain_counts(),
            (3, 1),
            "no webpki run after the handshake"
        );
    }
}
