//! One `[[site]]`: its server identity, backend, and the rustls config built from them.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::raw::RawSite;
use crate::config::{CertificateExpiry, PLACEHOLDER_PREFIX, Site};
use crate::forward::upstream::Backend;
use crate::tls::server::server_config;

use super::{Loader, not_after, subject};

impl Loader<'_> {
    pub(super) fn site(
        &mut self,
        i: usize,
        raw: &RawSite,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Option<Site> {
        let key = format!("site[{i}]");
        let errors_before = self.errors.len();
        let identity = self.server_identity(&key, raw);
        let scopes = self.scopes(&key, raw);
        let mut certificate_expiry = CertificateExpiry::default();
        let client_auth = self.client_auth(&key, raw, &scopes, &mut certificate_expiry);
        let backend = self.backend(&key, raw, connect_timeout, response_timeout);
        let w3c = self.w3c(&key, raw);
        let http_errors = self.http_errors(&key, raw);
        let (identity, client_auth, backend) = (identity?, client_auth?, backend?);
        if self.errors.len() != errors_before {
            return None;
        }
        let resumption = match self.resumption.for_site(
            &raw.name,
            client_auth.trust_fingerprint(),
            self.ticket_keys.as_ref(),
        ) {
            Ok(r) => r,
            Err(e) => {
                self.error(&key, format!("cannot create session ticket keys: {e}"));
                return None;
            }
        };
        let (chain, key_der, key_name) = identity;
        certificate_expiry.server = chain.iter().filter_map(|c| not_after(c)).collect();
        certificate_expiry.server_subjects = chain.iter().map(|c| subject(c)).collect();
        let tls = match server_config(
            Arc::clone(&self.server_tls),
            chain,
            key_der,
            Arc::clone(&client_auth),
            resumption,
        ) {
            Ok(tls) => tls,
            Err(e) => {
                self.error(
                    format!("{key}.{key_name}"),
                    format!("the private key cannot be used with the certificate: {e}"),
                );
                return None;
            }
        };
        Some(Site {
            name: raw.name.clone(),
            index: i,
            host_names: raw
                .host_names
                .iter()
                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            tls: Arc::new(tls),
            client_auth,
            scopes,
            backend,
            preserve_host: raw.preserve_host.unwrap_or(true),
            certificate_expiry,
            metrics: crate::metrics::SiteMetrics::new(&raw.name),
            id: raw.id,
            w3c,
            http_errors,
        })
    }

    #[allow(clippy::type_complexity)]
    fn server_identity(
        &mut self,
        key: &str,
        raw: &RawSite,
    ) -> Option<(
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
        &'static str,
    )> {
        match (&raw.certificate, &raw.private_key, &raw.pfx) {
            (Some(cert), Some(pkey), None) => {
                let cert_path = self.file_value(&format!("{key}.certificate"), cert);
                let key_path = self.file_value(&format!("{key}.private_key"), pkey);
                let chain = cert_path.and_then(|p| {
                    crate::tls::load_certificates(&p)
                        .map_err(|e| self.error(format!("{key}.certificate"), e.to_string()))
                        .ok()
                });
                let key_der = key_path.and_then(|p| {
                    crate::tls::load_private_key(&p)
                        .map_err(|e| self.error(format!("{key}.private_key"), e.to_string()))
                        .ok()
                });
                Some((chain?, key_der?, "private_key"))
            }
            (None, None, Some(pfx)) => {
                let path = self.file_value(&format!("{key}.pfx"), pfx)?;
                let password = match &raw.pfx_password_env {
                    None => String::new(),
                    Some(var) => match std::env::var(var) {
                        Ok(p) => p,
                        Err(_) => {
                            self.error(
                                format!("{key}.pfx_password_env"),
                                format!("environment variable `{var}` is not set"),
                            );
                            return None;
                        }
                    },
                };
                match crate::tls::load_pfx(&path, &password) {
                    Ok((chain, key_der)) => Some((chain, key_der, "pfx")),
                    Err(e) => {
                        self.error(format!("{key}.pfx"), e.to_string());
                        None
                    }
                }
            }
            (_, _, Some(_)) => {
                self.error(
                    format!("{key}.pfx"),
                    "use either pfx or certificate + private_key, not both",
                );
                None
            }
            (None, _, None) => {
                self.error(
                    format!("{key}.certificate"),
                    "the site needs a server certificate: certificate + private_key, or pfx",
                );
                None
            }
            (Some(_), None, None) => {
                self.error(
                    format!("{key}.private_key"),
                    "certificate is set but private_key is missing",
                );
                None
            }
        }
    }

    fn backend(
        &mut self,
        key: &str,
        raw: &RawSite,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Option<Backend> {
        if raw.backend.trim().is_empty() {
            self.error(
                format!("{key}.backend"),
                "no backend URL (e.g. backend = \"http://127.0.0.1:8080\")",
            );
            return None;
        }
        if raw.backend.starts_with(PLACEHOLDER_PREFIX) {
            self.file_value(&format!("{key}.backend"), &raw.backend);
            return None;
        }
        let mut ca = Vec::new();
        for (j, file) in raw.backend_ca.iter().enumerate() {
            let ckey = format!("{key}.backend_ca[{j}]");
            if let Some(path) = self.file_value(&ckey, file) {
                match crate::tls::load_certificates(&path) {
                    Ok(mut certs) => ca.append(&mut certs),
                    Err(e) => self.error(ckey, e.to_string()),
                }
            }
        }
        match Backend::new(&raw.backend, &ca, connect_timeout, response_timeout) {
            Ok(b) => Some(b),
            Err(reason) => {
                self.error(format!("{key}.backend"), reason);
                None
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{keys, loader, raw, reason};
    use crate::config::raw::RawSite;
    use crate::tls::server::ResumptionKeys;

    const T: Duration = Duration::from_secs(1);

    #[test]
    fn the_server_identity_is_a_pair_or_a_pfx_never_both() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let both: RawSite =
            raw("name = \"s\"\ncertificate = \"a.pem\"\nprivate_key = \"k.pem\"\npfx = \"s.pfx\"");
        assert!(l.server_identity("site[0]", &both).is_none());
        assert!(reason(&l, "site[0].pfx").contains("not both"));

        let none: RawSite = raw("name = \"s\"");
        assert!(l.server_identity("site[1]", &none).is_none());
        assert!(reason(&l, "site[1].certificate").contains("needs a server certificate"));

        let no_key: RawSite = raw("name = \"s\"\ncertificate = \"a.pem\"");
        assert!(l.server_identity("site[2]", &no_key).is_none());
        assert!(reason(&l, "site[2].private_key").contains("private_key is missing"));
        assert_eq!(keys(&l).len(), 3);
    }

    #[test]
    fn unreadable_identity_files_are_reported_each_at_its_key() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let site: RawSite = raw(
            "name = \"s\"\ncertificate = \"/nonexistent/a.pem\"\nprivate_key = \"/nonexistent/k.pem\"",
        );
        assert!(l.server_identity("site[0]", &site).is_none());
        assert_eq!(keys(&l), ["site[0].certificate", "site[0].private_key"]);
    }

    #[test]
    fn a_pfx_password_comes_from_a_set_environment_variable() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let site: RawSite = raw(
            "name = \"s\"\npfx = \"s.pfx\"\npfx_password_env = \"CERTGATE_TEST_UNSET_PFX_PASSWORD\"",
        );
        assert!(l.server_identity("site[0]", &site).is_none());
        assert!(
            reason(&l, "site[0].pfx_password_env")
                .contains("`CERTGATE_TEST_UNSET_PFX_PASSWORD` is not set")
        );
    }

    #[test]
    fn backends_need_a_url_and_reject_placeholders() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        assert!(l.backend("site[0]", &raw("name = \"s\""), T, T).is_none());
        assert!(reason(&l, "site[0].backend").contains("no backend URL"));
        let placeholder: RawSite = raw("name = \"s\"\nbackend = \"IMPORT-PLACEHOLDER(--backend)\"");
        assert!(l.backend("site[1]", &placeholder, T, T).is_none());
        assert!(reason(&l, "site[1].backend").contains("--backend URL"));
        let bad: RawSite = raw("name = \"s\"\nbackend = \"ftp://example.test\"");
        assert!(l.backend("site[2]", &bad, T, T).is_none());
        assert_eq!(keys(&l).last().map(String::as_str), Some("site[2].backend"));
        let missing_ca: RawSite = raw(
            "name = \"s\"\nbackend = \"https://127.0.0.1:9\"\nbackend_ca = [\"/nonexistent/ca.pem\"]",
        );
        l.backend("site[3]", &missing_ca, T, T);
        assert!(keys(&l).contains(&"site[3].backend_ca[0]".to_string()));
    }

    #[test]
    fn a_good_backend_loads() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let good: RawSite = raw("name = \"s\"\nbackend = \"http://127.0.0.1:8080\"");
        assert!(l.backend("site[0]", &good, T, T).is_some());
        assert!(l.errors.is_empty());
    }
}
