//! Configuration: the TOML file ([`raw`]) parsed once into validated runtime types.
//!
//! Parse, don't validate: the request path only ever sees [`Runtime`], whose sites already hold
//! their rustls configs, compiled mappers, location scopes and backend pools. Loading reports
//! every problem at once, each naming the file, the TOML key path and the reason, so `certgate
//! check` and a rejected reload tell a person exactly what to fix.

mod load;
pub mod raw;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;

use crate::directory::Directory;
use crate::directory::config::SitePolicy;
use crate::forward::headers::IdentityHeaders;
use crate::forward::path::in_location;
use crate::forward::upstream::Backend;
use crate::iis::SslFlags;
use crate::mapping::Mapper;
use crate::tls::accept::TlsSite;
use crate::tls::client_auth::ClientAuth;
use crate::tls::server::ResumptionKeys;

/// Values `certgate import-iis` writes where IIS keeps the setting outside its XML; the text in
/// parentheses is the import flag that supplies it.
pub const PLACEHOLDER_PREFIX: &str = "IMPORT-PLACEHOLDER(";

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// TOML key path, e.g. `site[0].client_ca[1]`.
    pub key: String,
    /// What is wrong and, where possible, how to fix it.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.reason)
        }
    }
}

/// Every problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// `[server]`, validated.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// HTTPS listeners.
    pub listen: Vec<SocketAddr>,
    /// Admin listener.
    pub admin_listen: Option<SocketAddr>,
    /// Administrators' certificates, when the admin listener requires them.
    pub admin_auth: Option<Arc<crate::admin_auth::AdminAuth>>,
    /// Whole TLS handshake.
    pub handshake_timeout: Duration,
    /// Complete request headers.
    pub header_read_timeout: Duration,
    /// Idle keep-alive connections.
    pub idle_timeout: Duration,
    /// Request header block size.
    pub max_header_bytes: usize,
    /// Concurrent client connections.
    pub max_connections: usize,
    /// Poll interval of the file watcher; `None` when watching is off.
    pub watch_interval: Option<Duration>,
}

/// Effective settings for a location (or the site root), inheritance already applied.
#[derive(Debug)]
pub struct Scope {
    /// The location as configured (`/public`), `/` for the site root.
    pub path: String,
    /// Matching form (see [`crate::forward::path`]); empty for the root.
    pub canonical: String,
    /// Effective `ssl_flags`.
    pub ssl_flags: SslFlags,
    /// Effective `anonymous_authentication`.
    pub anonymous: bool,
    /// Effective mapper section.
    pub mapper: Arc<Mapper>,
    /// Effective directory checks.
    pub directory: SitePolicy,
    /// Effective Kerberos to the backend; `None` when off.
    pub kerberos: Option<Arc<crate::kerberos::BackendKerberos>>,
    /// The location's own error pages over the site's (`None`: the site's alone).
    pub http_errors: Option<Arc<crate::error_page::LocationErrors>>,
}

/// One site, ready to serve.
pub struct Site {
    /// IIS site name.
    pub name: String,
    /// Position in the file.
    pub index: usize,
    /// SNI and Host names (lowercase; `*.` wildcards).
    pub host_names: Vec<String>,
    /// The rustls config chosen for this site's SNI.
    pub tls: Arc<ServerConfig>,
    /// The client-certificate policy (also referenced by `tls`).
    pub client_auth: Arc<ClientAuth>,
    /// Locations, most specific first; the root scope is last.
    pub scopes: Vec<Scope>,
    /// The backend pool.
    pub backend: Backend,
    /// Send the client's Host header to the backend.
    pub preserve_host: bool,
    /// notAfter of the server chain and of the client CAs, for the expiry gauges.
    pub certificate_expiry: CertificateExpiry,
    /// The request path's metric handles.
    pub metrics: crate::metrics::SiteMetrics,
    /// IIS site id (`W3SVC<id>`), when configured.
    pub id: Option<u32>,
    /// W3C logging, when a `log_file` section applies.
    pub w3c: Option<Arc<crate::w3c::SiteLog>>,
    /// Error mode and custom error pages.
    pub http_errors: crate::error_page::HttpErrors,
}

/// notAfter (Unix seconds) of the certificates a site depends on.
#[derive(Debug, Clone, Default)]
pub struct CertificateExpiry {
    /// Server chain, leaf first.
    pub server: Vec<i64>,
    /// Client trust anchors, in file order.
    pub client_ca: Vec<i64>,
    /// Subjects of `server`, same order (for the status page).
    pub server_subjects: Vec<String>,
    /// Subjects of the client trust anchors, same order.
    pub client_ca_subjects: Vec<String>,
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("name", &self.name)
            .field("host_names", &self.host_names)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl TlsSite for Site {
    fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.tls)
    }

    fn client_auth(&self) -> &ClientAuth {
        &self.client_auth
    }
}

impl Site {
    /// The most specific scope containing a canonical path.
    pub fn scope_for(&self, canonical: &str) -> &Scope {
        self.scopes
            .iter()
            .find(|s| in_location(canonical, &s.canonical))
            .unwrap_or_else(|| self.root_scope())
    }

    /// The site-level scope.
    pub fn root_scope(&self) -> &Scope {
        // `load` always pushes the root scope last, so the slice is never empty.
        #[allow(clippy::expect_used)]
        self.scopes
            .last()
            .expect("a site always has its root scope")
    }
}

/// A validated configuration: everything the proxy needs, immutable once built.
#[derive(Debug)]
pub struct Runtime {
    /// The file it was loaded from.
    pub source: PathBuf,
    /// Listener settings.
    pub server: ServerSettings,
    /// Identity header names.
    pub headers: Arc<IdentityHeaders>,
    /// Sites in file order.
    pub sites: Vec<Arc<Site>>,
    /// The Active Directory connection, when `[directory]` is configured.
    pub directory: Option<Directory>,
    /// The Kerberos client, when `[kerberos]` is configured.
    pub kerberos: Option<Arc<crate::kerberos::Kerberos>>,
    /// Things that work but are probably not what the author meant.
    pub warnings: Vec<String>,
    /// Every file the configuration read (itself included), for the file watcher.
    pub files: Vec<PathBuf>,
    exact_names: HashMap<String, usize>,
    wildcard_names: HashMap<String, usize>,
    catch_all: Option<usize>,
    default_site: usize,
}

impl Runtime {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path, resumption: &ResumptionKeys) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_owned(),
                key: String::new(),
                reason: format!("cannot read the configuration file: {e}"),
            }])
        })?;
        Self::from_toml(&text, path, resumption)
    }

    /// Validates configuration text; relative paths resolve against `path`'s directory.
    pub fn from_toml(
        text: &str,
        path: &Path,
        resumption: &ResumptionKeys,
    ) -> Result<Self, ConfigErrors> {
        load::Loader::new(path, resumption).load(text)
    }

    /// [`Self::from_toml`], reading the mapping table at `table` (as the configuration names
    /// it, resolved against `path`'s directory) as holding `table_text`: how
    /// `certgate mapping` validates an edited table before writing it.
    pub fn from_toml_with_table(
        text: &str,
        path: &Path,
        resumption: &ResumptionKeys,
        table: &Path,
        table_text: &[u8],
    ) -> Result<Self, ConfigErrors> {
        load::Loader::new(path, resumption)
            .with_pending_table(table, table_text)
            .load(text)
    }

    /// The site for a ClientHello's SNI; no SNI means the default site. An SNI no site claims
    /// gets no site (the handshake is refused), unless a site has no `host_names`.
    pub fn site_for_sni(&self, sni: Option<&str>) -> Option<&Arc<Site>> {
        match sni {
            None => self.sites.get(self.default_site),
            Some(name) => self.site_for_host(name).and_then(|i| self.sites.get(i)),
        }
    }

    /// Index of the site that serves a host name (case-insensitive, no port).
    pub fn site_for_host(&self, host: &str) -> Option<usize> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(i) = self.exact_names.get(&host) {
            return Some(*i);
        }
        if let Some((_, parent)) = host.split_once('.')
            && let Some(i) = self.wildcard_names.get(parent)
        {
            return Some(*i);
        }
        self.catch_all
    }
}
