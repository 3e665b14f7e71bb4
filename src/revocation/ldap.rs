//! CRLs from LDAP distribution points, as AD Certificate Services publishes them
//! (`ldap:///CN=<CA>,CN=<host>,CN=CDP,CN=Public Key Services,CN=Services,CN=Configuration,...
//! ?certificateRevocationList?base?objectClass=cRLDistributionPoint`).
//!
//! Host-less URLs are resolved against the configured `[directory]`.

use std::time::Duration;

use bytes::Bytes;

use super::fetch::{FetchError, Limits};

/// The configured directory, for host-less `ldap:///` URLs.
#[derive(Debug)]
pub struct LdapSource {
    id: String,
}

impl LdapSource {
    /// Identifies the directory settings (no secret), to key the shared cache.
    pub fn identity(&self) -> String {
        self.id.clone()
    }
}

/// Fetches the CRL attribute an LDAP URL names.
pub async fn fetch(
    _source: Option<&LdapSource>,
    url: &str,
    _limits: &Limits,
    _timeout: Duration,
) -> Result<Bytes, FetchError> {
    Err(FetchError::Ldap {
        url: url.to_owned(),
        reason: "LDAP distribution points are not fetched yet".into(),
    })
}
