//! A site's client-certificate verifier: trust anchors, and the revocation checker built from
//! its CRL files and `[site.revocation]` (see `revocation.rs`).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateRevocationListDer;

use crate::config::raw::RawSite;
use crate::config::{CertificateExpiry, Scope};
use crate::tls::client_auth::{ClientAuth, ErrorReporting};

use super::{Loader, not_after, subject};

impl Loader<'_> {
    pub(super) fn client_auth(
        &mut self,
        key: &str,
        raw: &RawSite,
        scopes: &[Scope],
        expiry: &mut CertificateExpiry,
    ) -> Option<Arc<ClientAuth>> {
        let wants = scopes.iter().any(|s| s.ssl_flags.wants_certificate());
        let reporting = match raw.certificate_errors.as_deref() {
            None | Some("http") => ErrorReporting::Http,
            Some("tls") => ErrorReporting::Tls,
            Some(other) => {
                self.error(
                    format!("{key}.certificate_errors"),
                    format!("`{other}` is not one of \"http\", \"tls\""),
                );
                ErrorReporting::Http
            }
        };
        if !wants {
            if !raw.client_ca.is_empty() {
                self.warn(
                    key,
                    "client_ca is set but no ssl_flags of this site ask for a client certificate",
                );
            }
            return Some(Arc::new(ClientAuth::disabled()));
        }
        if raw.client_ca.is_empty() {
            self.error(
                format!("{key}.client_ca"),
                "ssl_flags ask for client certificates, so the site needs client_ca (the CAs \
                 that issue them; IIS: Trusted Root store)",
            );
            return None;
        }
        let errors_before = self.errors.len();
        let mut roots = RootCertStore::empty();
        let mut roots_der = Vec::new();
        for (j, file) in raw.client_ca.iter().enumerate() {
            let ckey = format!("{key}.client_ca[{j}]");
            let Some(path) = self.file_value(&ckey, file) else {
                continue;
            };
            match crate::tls::load_certificates(&path) {
                Ok(certs) => {
                    expiry
                        .client_ca
                        .extend(certs.iter().filter_map(|c| not_after(c)));
                    expiry
                        .client_ca_subjects
                        .extend(certs.iter().map(|c| subject(c)));
                    roots_der.extend(certs.iter().cloned());
                    let (_, ignored) = roots.add_parsable_certificates(certs);
                    if ignored > 0 {
                        self.error(
                            ckey,
                            format!("{ignored} certificate(s) cannot be used as trust anchors"),
                        );
                    }
                }
                Err(e) => self.error(ckey, e.to_string()),
            }
        }
        let mut crls: Vec<(String, CertificateRevocationListDer<'static>)> = Vec::new();
        for (j, file) in raw.crl.iter().enumerate() {
            let ckey = format!("{key}.crl[{j}]");
            let Some(path) = self.file_value(&ckey, file) else {
                continue;
            };
            match crate::tls::load_crls(&path) {
                Ok(list) => crls.extend(list.into_iter().map(|c| (file.clone(), c))),
                Err(e) => self.error(ckey, e.to_string()),
            }
        }
        let revocation = self.revocation(key, raw, &roots_der, crls);
        if self.errors.len() != errors_before {
            return None;
        }
        let mandatory = scopes.iter().all(|s| s.ssl_flags.require_cert);
        match ClientAuth::new(roots, revocation, reporting, mandatory) {
            Ok(auth) => Some(Arc::new(auth)),
            Err(e) => {
                let which = if matches!(e, rustls::server::VerifierBuilderError::InvalidCrl(_)) {
                    "crl"
                } else {
                    "client_ca"
                };
                self.error(
                    format!("{key}.{which}"),
                    format!("cannot build the verifier: {e}"),
                );
                None
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use super::super::testing::{keys, loader, raw, reason};
    use crate::config::raw::RawSite;
    use crate::config::{CertificateExpiry, Scope};
    use crate::directory::config::SitePolicy;
    use crate::iis::SslFlags;
    use crate::tls::server::ResumptionKeys;

    fn scope(flags: &str) -> Scope {
        Scope {
            path: "/".into(),
            canonical: String::new(),
            ssl_flags: SslFlags::parse(flags).unwrap().0,
            anonymous: false,
            mapper: Arc::default(),
            directory: SitePolicy::default(),
            kerberos: None,
            http_errors: None,
        }
    }

    #[test]
    fn no_client_certificate_wanted_means_no_verifier_and_a_warning_for_a_stray_ca() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let site: RawSite = raw("name = \"s\"\nclient_ca = [\"ca.pem\"]");
        let auth = l.client_auth(
            "site[0]",
            &site,
            &[scope("Ssl")],
            &mut CertificateExpiry::default(),
        );
        assert!(auth.is_some());
        assert!(l.errors.is_empty());
        assert!(
            l.warnings[0].contains("client_ca is set but no ssl_flags"),
            "{:?}",
            l.warnings
        );
    }

    #[test]
    fn wanting_client_certificates_needs_client_ca() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let site: RawSite = raw("name = \"s\"");
        let auth = l.client_auth(
            "site[0]",
            &site,
            &[scope("Ssl, SslNegotiateCert")],
            &mut CertificateExpiry::default(),
        );
        assert!(auth.is_none());
        assert!(reason(&l, "site[0].client_ca").contains("Trusted Root store"));
    }

    #[test]
    fn unknown_choices_and_unreadable_files_are_reported_together() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let site: RawSite = raw(
            "name = \"s\"\ncertificate_errors = \"page\"\ncrl_check = \"leaf\"\n\
             client_ca = [\"/nonexistent/ca.pem\"]\ncrl = [\"/nonexistent/ca.crl\"]",
        );
        let auth = l.client_auth(
            "site[0]",
            &site,
            &[scope("Ssl, SslNegotiateCert, SslRequireCert")],
            &mut CertificateExpiry::default(),
        );
        assert!(auth.is_none());
        assert_eq!(
            keys(&l),
            [
                "site[0].certificate_errors",
                "site[0].client_ca[0]",
                "site[0].crl[0]",
                "site[0].crl_check",
            ]
        );
        assert!(reason(&l, "site[0].certificate_errors").contains("\"http\", \"tls\""));
        assert!(reason(&l, "site[0].crl_check").contains("\"chain\", \"end_entity\""));
    }
}
