//! Client-certificate authentication for the admin listener (`[server.admin]`).
//!
//! IIS administrators sign in with their own certificates; so can certgate's. With
//! `[server.admin]`, the admin listener speaks TLS with its own certificate, asks for a client
//! certificate chaining to `client_ca`, maps it with the same IIS mapper section as a site
//! (`[server.admin.iis_client_certificate_mapping_authentication]`, one-to-one and many-to-one)
//! and serves `/status` and `/metrics` only when the mapped user is in `allowed_users`.
//! `/healthz` and `/readyz` stay open without a certificate, for probes. Without the section
//! the admin listener stays plain HTTP (keep it on loopback).

use std::fmt;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::config::raw::RawIisMapping;
use crate::identity::CertFacts;
use crate::mapping::{Mapper, MappingOutcome};

/// `[server.admin]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminAuth {
    /// PEM certificate chain of the admin listener.
    #[serde(default)]
    pub certificate: String,
    /// Its PEM private key.
    #[serde(default)]
    pub private_key: String,
    /// CAs that issue administrators' certificates.
    #[serde(default)]
    pub client_ca: Vec<String>,
    /// Users (as mapped) allowed to see `/status` and `/metrics`; case-insensitive.
    #[serde(default)]
    pub allowed_users: Vec<String>,
    /// How certificates map to users: IIS's mapper section, as in a site.
    #[serde(default)]
    pub iis_client_certificate_mapping_authentication: RawIisMapping,
}

/// Validated `[server.admin]`.
pub struct AdminAuth {
    /// The listener's TLS config (client certificates requested, verified against
    /// `client_ca`, optional so probes work).
    pub tls: Arc<ServerConfig>,
    /// The mapper.
    pub mapper: Mapper,
    /// Allowed users, lowercase.
    pub allowed_users: Vec<String>,
}

impl fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminAuth")
            .field("allowed_users", &self.allowed_users)
            .finish_non_exhaustive()
    }
}

/// Who an admin connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminIdentity {
    /// No certificate.
    Anonymous,
    /// A certificate that maps to an allowed user.
    Administrator(String),
    /// A certificate that maps to no allowed user.
    Refused(String),
}

impl AdminAuth {
    /// Decides who presented `leaf` (already chain-verified by the TLS handshake).
    pub fn identify(&self, leaf: Option<&CertificateDer<'_>>) -> AdminIdentity {
        let Some(leaf) = leaf else {
            return AdminIdentity::Anonymous;
        };
        let Ok(facts) = CertFacts::parse(leaf) else {
            return AdminIdentity::Refused("an unparsable certificate".into());
        };
        match self.mapper.map(&facts) {
            MappingOutcome::Allow(user) => {
                let name = user.user_name.to_string();
                if self.allowed_users.contains(&name.to_lowercase()) {
                    AdminIdentity::Administrator(name)
                } else {
                    AdminIdentity::Refused(format!("{name} (not in allowed_users)"))
                }
            }
            MappingOutcome::Deny { .. } => {
                AdminIdentity::Refused(format!("{} (denied by a mapping)", facts.thumbprint()))
            }
            MappingOutcome::NoMatch => {
                AdminIdentity::Refused(format!("{} (not mapped)", facts.thumbprint()))
            }
        }
    }
}
