//! Throwaway PKI for `certgate demo` and the test suite.
//!
//! Generating certificates in-process means no key material is ever committed and every test run
//! has its own CA, as rustls' own examples do. ECDSA P-256 keys keep generation fast.

mod pfx;

pub use pfx::{PfxError, random_password};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

/// A certificate and its private key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Certificate PEM.
    pub cert_pem: String,
    /// PKCS#8 private key PEM.
    pub key_pem: String,
    /// Certificate DER.
    pub der: CertificateDer<'static>,
}

/// What a client certificate should say.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// Subject CN.
    pub common_name: String,
    /// Subject OUs, in order.
    pub organizational_units: Vec<String>,
    /// Subject O.
    pub organization: Option<String>,
    /// Serial number; random when absent.
    pub serial: Option<u64>,
    /// notBefore relative to now, in days (negative = in the past).
    pub not_before_days: i64,
    /// notAfter relative to now, in days.
    pub not_after_days: i64,
    /// Include the clientAuth extended key usage (otherwise serverAuth only).
    pub client_auth: bool,
    /// SAN UPN (otherName 1.3.6.1.4.1.311.20.2.3).
    pub upn: Option<String>,
    /// SAN rfc822Name.
    pub email: Option<String>,
    /// CRL Distribution Point URIs.
    pub crl_distribution_points: Vec<String>,
    /// OCSP responder URIs (Authority Information Access).
    pub ocsp_responders: Vec<String>,
}

impl ClientSpec {
    /// A valid client certificate for `common_name`.
    pub fn new(common_name: &str) -> Self {
        Self {
            common_name: common_name.to_owned(),
            organizational_units: Vec::new(),
            organization: None,
            serial: None,
            not_before_days: -1,
            not_after_days: 365,
            client_auth: true,
            upn: None,
            email: None,
            crl_distribution_points: Vec::new(),
            ocsp_responders: Vec::new(),
        }
    }
}

/// A certificate authority that can issue server and client certificates and CRLs.
pub struct Authority {
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate PEM.
    pub cert_pem: String,
    /// The CA certificate DER.
    pub der: CertificateDer<'static>,
}

impl Authority {
    /// A new self-signed root CA.
    pub fn new(common_name: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "certgate test PKI");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = OffsetDateTime::now_utc() - Duration::days(2);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
        params.key_identifier_method = KeyIdMethod::Sha256;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            der: cert.der().clone(),
            params,
            key,
        })
    }

    /// This CA's certificate again, same name and key, with a keyUsage that leaves out
    /// cRLSign: a CA that may not sign CRLs (RFC 5280 §6.3.3 f), for tests.
    pub fn without_crl_sign(&self) -> Result<CertificateDer<'static>, rcgen::Error> {
        let mut params = self.params.clone();
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ok(params.self_signed(&self.key)?.der().clone())
    }

    /// The CA's private key, PKCS#8 PEM (for tools such as `openssl ca` in tests).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// An intermediate CA issued by this one, naming the given revocation sources.
    pub fn intermediate(
        &self,
        common_name: &str,
        crl_distribution_points: &[String],
        ocsp_responders: &[String],
    ) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "certgate test PKI");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(365);
        params.key_identifier_method = KeyIdMethod::Sha256;
        revocation_sources(&mut params, crl_distribution_points, ocsp_responders);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer())?;
        Ok(Self {
            cert_pem: cert.pem(),
            der: cert.der().clone(),
            params,
            key,
        })
    }

    /// A delegated OCSP responder certificate (id-kp-OCSPSigning) issued by this CA.
    pub fn ocsp_signer(&self, common_name: &str) -> Result<Issued, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.is_ca = IsCa::ExplicitNoCa;
        params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(30);
        self.sign(params)
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// A server certificate for DNS names and IP addresses.
    pub fn server(&self, names: &[&str]) -> Result<Issued, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        for name in names {
            params
                .subject_alt_names
                .push(match name.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName((*name).try_into()?),
                });
        }
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.is_ca = IsCa::ExplicitNoCa;
        params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(365);
        self.sign(params)
    }

    /// A client certificate.
    pub fn client(&self, spec: &ClientSpec) -> Result<Issued, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        if let Some(o) = &spec.organization {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        for ou in &spec.organizational_units {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        dn.push(DnType::CommonName, spec.common_name.as_str());
        params.distinguished_name = dn;
        if let Some(upn) = &spec.upn {
            params.subject_alt_names.push(SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                upn.clone().into(),
            )));
        }
        if let Some(email) = &spec.email {
            params
                .subject_alt_names
                .push(SanType::Rfc822Name(email.as_str().try_into()?));
        }
        params.extended_key_usages = if spec.client_auth {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        } else {
            vec![ExtendedKeyUsagePurpose::ServerAuth]
        };
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // ExplicitNoCa makes rcgen write basicConstraints and the subject key identifier.
        params.is_ca = IsCa::ExplicitNoCa;
        revocation_sources(
            &mut params,
            &spec.crl_distribution_points,
            &spec.ocsp_responders,
        );
        params.serial_number = spec.serial.map(SerialNumber::from);
        params.not_before = OffsetDateTime::now_utc() + Duration::days(spec.not_before_days);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(spec.not_after_days);
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Result<Issued, rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer())?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        })
    }

    /// A CRL (PEM) revoking the given serial numbers, valid for `valid_days`.
    pub fn crl(&self, revoked: &[u64], valid_days: i64) -> Result<String, rcgen::Error> {
        let now = OffsetDateTime::now_utc();
        let next_update = now + Duration::days(valid_days);
        let params = CertificateRevocationListParams {
            // A negative validity makes an already-expired CRL, for tests of CRL freshness.
            this_update: next_update.min(now) - Duration::days(1),
            next_update,
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: now - Duration::minutes(30),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer())?.pem()
    }
}

/// Adds CRL Distribution Points and an Authority Information Access extension with OCSP
/// responders (rcgen has no AIA support, so its DER is written here).
fn revocation_sources(params: &mut CertificateParams, cdps: &[String], ocsp: &[String]) {
    if !cdps.is_empty() {
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: cdps.to_vec(),
        }];
    }
    if !ocsp.is_empty() {
        // AccessDescription ::= SEQUENCE { id-ad-ocsp, uniformResourceIdentifier [6] }
        const ID_AD_OCSP: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
        let mut descriptions = Vec::new();
        for url in ocsp {
            let mut body = ID_AD_OCSP.to_vec();
            body.extend(der_tlv(0x86, url.as_bytes()));
            descriptions.extend(der_tlv(0x30, &body));
        }
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                der_tlv(0x30, &descriptions),
            ));
    }
}

/// One DER TLV with a definite length.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    crate::revocation::der::write(tag, content)
}
