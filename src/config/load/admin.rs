//! `[server.admin]`: the admin listener's own TLS identity and administrators' certificates
//! (see [`crate::admin_auth`]).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;

use crate::admin_auth::{AdminAuth, RawAdminAuth};

use super::Loader;

const KEY: &str = "server.admin";

impl Loader<'_> {
    pub(super) fn admin_auth(&mut self, raw: &RawAdminAuth) -> Option<Arc<AdminAuth>> {
        let errors_before = self.errors.len();
        let chain = self
            .file_value(&format!("{KEY}.certificate"), &raw.certificate)
            .and_then(|p| match crate::tls::load_certificates(&p) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.error(format!("{KEY}.certificate"), e.to_string());
                    None
                }
            });
        let key = self
            .file_value(&format!("{KEY}.private_key"), &raw.private_key)
            .and_then(|p| match crate::tls::load_private_key(&p) {
                Ok(k) => Some(k),
                Err(e) => {
                    self.error(format!("{KEY}.private_key"), e.to_string());
                    None
                }
            });
        if raw.client_ca.is_empty() {
            self.error(
                format!("{KEY}.client_ca"),
                "the CAs that issue administrators' certificates are required",
            );
        }
        let mut roots = RootCertStore::empty();
        for (j, file) in raw.client_ca.iter().enumerate() {
            let ckey = format!("{KEY}.client_ca[{j}]");
            if let Some(path) = self.file_value(&ckey, file) {
                match crate::tls::load_certificates(&path) {
                    Ok(certs) => {
                        roots.add_parsable_certificates(certs);
                    }
                    Err(e) => self.error(ckey, e.to_string()),
                }
            }
        }
        if raw.allowed_users.is_empty() {
            self.error(
                format!("{KEY}.allowed_users"),
                "no administrator is allowed; list the mapped user names",
            );
        }
        let mapping_key = format!("{KEY}.iis_client_certificate_mapping_authentication");
        let mut mapping = raw.iis_client_certificate_mapping_authentication.clone();
        if !mapping.enabled {
            self.warn(&mapping_key, "enabled is implied for the admin listener");
            mapping.enabled = true;
        }
        let mapper = self.mapper(&mapping_key, &mapping);
        let (chain, key) = (chain?, key?);
        if self.errors.len() != errors_before {
            return None;
        }
        let provider = crate::tls::provider();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .allow_unauthenticated()
                .build()
                .map_err(|e| self.error(format!("{KEY}.client_ca"), e.to_string()))
                .ok()?;
        let tls = crate::tls::cipher_suites::ordered_config(
            Arc::clone(&self.server_tls),
            verifier,
            chain,
            key,
        )
        .map_err(|e| self.error(format!("{KEY}.private_key"), e.to_string()))
        .ok()?;
        Some(Arc::new(AdminAuth {
            tls: Arc::new(tls),
            mapper,
            allowed_users: raw.allowed_users.iter().map(|u| u.to_lowercase()).collect(),
        }))
    }
}
