//! Maps a verified client certificate to a user, in IIS order: one-to-one first, then
//! many-to-one in file order.
//!
//! The mapper only decides *who* the certificate is; chain validation has already happened in
//! [`crate::tls`], and whether the answer is acceptable for a path is [`crate::proxy`]'s job.

pub mod many_to_one;
pub mod one_to_one;
pub mod table;
pub mod table_edit;

use std::fmt;
use std::sync::Arc;

use crate::directory::Secret;
use crate::identity::CertFacts;
use many_to_one::{ManyToOneSet, Permission};
use one_to_one::OneToOneIndex;

/// Which IIS mapping family produced a user; logged and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MappingKind {
    /// `oneToOneMappings`.
    OneToOne,
    /// `manyToOneMappings`.
    ManyToOne,
}

impl MappingKind {
    /// Stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneToOne => "one_to_one",
            Self::ManyToOne => "many_to_one",
        }
    }
}

/// The account a mapping names.
#[derive(Debug)]
pub struct MappedUser {
    /// The Windows account, as configured (`EXAMPLE\alice`).
    pub user_name: Arc<str>,
    /// The family the mapping belongs to.
    pub kind: MappingKind,
    /// Where the mapping is configured: a one-to-one key path, or a many-to-one mapping's name.
    pub source: MappingSource,
    /// The mapping's password (IIS mapping `password`), for directory credential checks.
    pub password: Option<Secret>,
}

/// Where a mapping is configured, as logs and `explain` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MappingSource {
    /// A many-to-one mapping's name.
    Named(Arc<str>),
    /// Entry `index` of the one-to-one list at key path `list`; shown as
    /// `site[0].iis_client_certificate_mapping_authentication.one_to_one_mappings[3]`. The list's
    /// key path is shared, so a million entries do not each keep a copy of it.
    Entry {
        /// Key path of the `one_to_one_mappings` array.
        list: Arc<str>,
        /// Position in the array.
        index: usize,
    },
    /// Line `line` of the one-to-one mapping table `file` (as configured); shown as
    /// `mappings.csv line 7`.
    Row {
        /// The table, as `one_to_one_mappings_file` names it.
        file: Arc<str>,
        /// Line number.
        line: usize,
    },
}

impl MappingSource {
    /// The text as a shared string (a many-to-one name without copying).
    pub fn label(&self) -> Arc<str> {
        match self {
            Self::Named(name) => Arc::clone(name),
            Self::Entry { .. } | Self::Row { .. } => self.to_string().into(),
        }
    }
}

impl fmt::Display for MappingSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(name) => f.write_str(name),
            Self::Entry { list, index } => write!(f, "{list}[{index}]"),
            Self::Row { file, line } => write!(f, "{file} line {line}"),
        }
    }
}

impl From<&str> for MappingSource {
    fn from(name: &str) -> Self {
        Self::Named(name.into())
    }
}

impl From<String> for MappingSource {
    fn from(name: String) -> Self {
        Self::Named(name.into())
    }
}

/// The mapper's answer for one certificate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MappingOutcome {
    /// A mapping allows the certificate as this user.
    Allow(Arc<MappedUser>),
    /// A `Deny` many-to-one mapping matched (IIS 403.12).
    Deny {
        /// The mapping's name.
        mapping: Arc<str>,
    },
    /// No enabled mapping matched.
    NoMatch,
}

/// The compiled `iis_client_certificate_mapping_authentication` section of one scope.
#[derive(Debug, Default)]
pub struct Mapper {
    /// Section `enabled`.
    pub enabled: bool,
    /// `one_to_one_certificate_mappings_enabled`.
    pub one_to_one_enabled: bool,
    /// `many_to_one_certificate_mappings_enabled`.
    pub many_to_one_enabled: bool,
    /// Enabled one-to-one entries.
    pub one_to_one: OneToOneIndex,
    /// Many-to-one mappings in priority (file) order.
    pub many_to_one: ManyToOneSet,
    /// The user each many-to-one mapping names, by position, built once so a match allocates
    /// nothing.
    pub many_to_one_users: Vec<Arc<MappedUser>>,
    /// `default_logon_domain`, applied to bare user names by directory checks.
    pub default_logon_domain: Option<String>,
}

impl Mapper {
    /// Runs the IIS evaluation order for a certificate that already passed chain validation.
    pub fn map(&self, facts: &CertFacts) -> MappingOutcome {
        if !self.enabled {
            return MappingOutcome::NoMatch;
        }
        if self.one_to_one_enabled
            && let Some(user) = self.one_to_one.lookup(&facts.sha256)
        {
            return MappingOutcome::Allow(Arc::clone(user));
        }
        if self.many_to_one_enabled {
            let found = self
                .many_to_one
                .mappings()
                .iter()
                .zip(&self.many_to_one_users)
                .find(|(m, _)| m.matches(facts));
            if let Some((mapping, user)) = found {
                return match mapping.permission() {
                    Permission::Deny => MappingOutcome::Deny {
                        mapping: user.source.label(),
                    },
                    _ => MappingOutcome::Allow(Arc::clone(user)),
                };
            }
        }
        MappingOutcome::NoMatch
    }
}
