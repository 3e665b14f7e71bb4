//! Turns [`RawConfig`] into [`Runtime`], collecting every error with its key path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use x509_parser::prelude::{FromDer, X509Certificate};

use super::raw::{RawConfig, RawDirectory, RawIisMapping, RawLocation, RawSite, RawSiteDirectory};
use super::{
    CertificateExpiry, ConfigError, ConfigErrors, PLACEHOLDER_PREFIX, Runtime, Scope,
    ServerSettings, Site,
};
use crate::directory::config::{DirectorySettings, SitePolicy, VerifyMode};
use crate::directory::{Directory, Secret};
use crate::iis::SslFlags;
use crate::mapping::many_to_one::ManyToOneSet;
use crate::mapping::one_to_one::{
    CertificateProblem, OneToOneIndex, certificate_digest, digest_certificate_text, map_entries,
};
use crate::mapping::{MappedUser, Mapper, MappingKind, MappingSource};
use crate::proxy::headers::IdentityHeaders;
use crate::proxy::path::{canonical_location, in_location};
use crate::proxy::upstream::Backend;
use crate::tls::client_auth::{ClientAuth, ErrorReporting, RevocationPolicy};
use crate::tls::server::{ResumptionKeys, server_config};

const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_BACKEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_BACKEND_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// hyper cannot buffer less than this for HTTP/1.1.
const MIN_MAX_HEADER_BYTES: usize = 8 * 1024;
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(2);
const MAPPING_KEY: &str = "iis_client_certificate_mapping_authentication";

mod fast;

use fast::FastOneToOne;

/// notAfter of a certificate, in Unix seconds.
fn not_after(der: &CertificateDer<'_>) -> Option<i64> {
    X509Certificate::from_der(der.as_ref())
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp())
}

pub(super) struct Loader<'a> {
    file: PathBuf,
    base: PathBuf,
    resumption: &'a ResumptionKeys,
    /// `[server] session_ticket_keys`, once read.
    ticket_keys: Option<crate::tls::ticket_keys::TicketKeys>,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    has_directory: bool,
    /// One-to-one entries the fast path read from the text, by run (see [`fast`]).
    runs: Vec<Vec<FastOneToOne<'a>>>,
    /// The `user_name` prefix of the placeholder entries standing for `runs`.
    marker: String,
    files: Vec<PathBuf>,
    /// Mapping passwords that could not be read, by the address of their [`MappedUser`]: only an
    /// error where a scope verifies credentials, since nothing else uses them.
    /// Each entry holds its user, so that the address stays unique while the loader runs.
    unresolved_passwords: HashMap<usize, (Arc<MappedUser>, String, String)>,
}

impl<'a> Loader<'a> {
    pub(super) fn new(file: &Path, resumption: &'a ResumptionKeys) -> Self {
        let base = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            file: file.to_owned(),
            base,
            resumption,
            ticket_keys: None,
            errors: Vec::new(),
            warnings: Vec::new(),
            has_directory: false,
            runs: Vec::new(),
            marker: String::new(),
            files: vec![file.to_owned()],
            unresolved_passwords: HashMap::new(),
        }
    }

    fn error(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            key: key.into(),
            reason: reason.into(),
        });
    }

    fn warn(&mut self, key: &str, message: impl AsRef<str>) {
        self.warnings.push(format!(
            "{}: {key}: {}",
            self.file.display(),
            message.as_ref()
        ));
    }

    pub(super) fn load(mut self, text: &'a str) -> Result<Runtime, ConfigErrors> {
        let raw = self.parse(text)?;
        let mut runtime = self.build(&raw);
        // A mapper shared by several scopes reports its problems once.
        let mut seen = std::collections::HashSet::new();
        self.errors.retain(|e| seen.insert(e.clone()));
        if let Some(r) = &mut runtime {
            let mut seen = std::collections::HashSet::new();
            r.warnings.retain(|w| seen.insert(w.clone()));
        }
        match runtime {
            Some(runtime) if self.errors.is_empty() => Ok(runtime),
            _ => Err(ConfigErrors(self.errors)),
        }
    }

    fn parse(&mut self, text: &'a str) -> Result<RawConfig, ConfigErrors> {
        // Long runs of one-to-one blocks are read by the fast path and the rest by TOML; any
        // error, and the file is parsed as written, so messages and positions are TOML's.
        if let Some(extracted) = fast::extract(text)
            && let Ok(raw) = self.parse_text(&extracted.text)
        {
            self.runs = extracted.runs;
            self.marker = extracted.marker;
            return Ok(raw);
        }
        self.parse_text(text)
    }

    fn parse_text(&self, text: &str) -> Result<RawConfig, ConfigErrors> {
        let position = |offset: Option<usize>| -> String {
            offset
                .map(|o| {
                    let before = &text[..o.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!(" (line {line}, column {column})")
                })
                .unwrap_or_default()
        };
        let result = toml::Deserializer::parse(text)
            .map_err(|e| (String::new(), e))
            .and_then(|de| {
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let key = e.path().to_string();
                    (if key == "." { String::new() } else { key }, e.into_inner())
                })
            });
        result.map_err(|(key, err)| {
            let at = position(err.span().map(|s| s.start));
            ConfigErrors(vec![ConfigError {
                file: self.file.clone(),
                key,
                reason: format!("{}{at}", err.message().trim_end()),
            }])
        })
    }

    fn build(&mut self, raw: &RawConfig) -> Option<Runtime> {
        let server = self.server(raw);
        let headers = match IdentityHeaders::from_raw(&raw.headers) {
            Ok(h) => Some(h),
            Err(errors) => {
                for (key, reason) in errors {
                    self.error(key, reason);
                }
                None
            }
        };
        let connect_timeout = raw
            .server
            .backend_connect_timeout
            .unwrap_or(DEFAULT_BACKEND_CONNECT_TIMEOUT);
        let response_timeout = raw
            .server
            .backend_response_timeout
            .unwrap_or(DEFAULT_BACKEND_RESPONSE_TIMEOUT);

        let directory = raw.directory.as_ref().and_then(|d| self.directory(d));
        self.has_directory = raw.directory.is_some();
        if raw.sites.is_empty() {
            self.error(
                "site",
                "no [[site]] is configured; certgate needs at least one",
            );
        }
        let mut sites = Vec::new();
        let mut exact_names: HashMap<String, usize> = HashMap::new();
        let mut wildcard_names: HashMap<String, usize> = HashMap::new();
        let mut catch_all = None;
        let mut seen_names: HashMap<String, usize> = HashMap::new();
        for (i, site) in raw.sites.iter().enumerate() {
            let key = format!("site[{i}]");
            if site.name.trim().is_empty() {
                self.error(format!("{key}.name"), "a site needs a name");
            } else if let Some(first) = seen_names.insert(site.name.to_lowercase(), i) {
                self.error(
                    format!("{key}.name"),
                    format!("site name `{}` is already used by site[{first}]", site.name),
                );
            }
            self.host_names(
                i,
                site,
                &mut exact_names,
                &mut wildcard_names,
                &mut catch_all,
            );
            if let Some(built) = self.site(i, site, connect_timeout, response_timeout) {
                sites.push(Arc::new(built));
            }
        }
        let default_site = match &raw.server.default_site {
            None => 0,
            Some(name) => match raw.sites.iter().position(|s| &s.name == name) {
                Some(i) => i,
                None => {
                    self.error(
                        "server.default_site",
                        format!("no [[site]] is named `{name}`"),
                    );
                    0
                }
            },
        };
        let (server, headers) = (server?, headers?);
        if sites.len() != raw.sites.len() {
            return None;
        }
        Some(Runtime {
            source: self.file.clone(),
            server,
            headers: Arc::new(headers),
            sites,
            directory,
            warnings: std::mem::take(&mut self.warnings),
            files: std::mem::take(&mut self.files),
            exact_names,
            wildcard_names,
            catch_all,
            default_site,
        })
    }

    fn directory(&mut self, raw: &RawDirectory) -> Option<Directory> {
        let settings = match DirectorySettings::from_raw(raw, &self.base, "directory") {
            Ok(s) => s,
            Err(issues) => {
                for issue in issues {
                    self.error(issue.key, issue.reason);
                }
                return None;
            }
        };
        match Directory::new(&settings) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error("directory", e.to_string());
                None
            }
        }
    }

    /// A mapping password from `password_env` or `password_file`; never from the file itself.
    /// A password that cannot be read is returned as `Err((key, reason))`: it only matters
    /// where a scope verifies credentials, which [`Self::check_directory_use`] decides.
    fn password(
        &mut self,
        key: &str,
        env: Option<&str>,
        file: Option<&str>,
    ) -> Result<Option<Secret>, (String, String)> {
        match (env, file) {
            (Some(_), Some(_)) => {
                self.error(key, "set either password_env or password_file, not both");
                Ok(None)
            }
            (Some(var), None) => match std::env::var(var) {
                Ok(value) => Ok(Some(Secret::new(value))),
                Err(_) => Err((
                    format!("{key}.password_env"),
                    format!("environment variable `{var}` is not set"),
                )),
            },
            (None, Some(path)) => {
                let Some(path) = self.file_value(&format!("{key}.password_file"), path) else {
                    return Ok(None);
                };
                match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(Some(Secret::new(text.trim_end_matches(['\r', '\n'])))),
                    Err(e) => Err((
                        format!("{key}.password_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )),
                }
            }
            (None, None) => Ok(None),
        }
    }

    /// Builds a mapped user, remembering a password that could not be read.
    fn mapped_user(
        &mut self,
        user_name: &str,
        kind: MappingKind,
        source: MappingSource,
        password: Result<Option<Secret>, (String, String)>,
    ) -> Arc<MappedUser> {
        let (password, unresolved) = match password {
            Ok(p) => (p, None),
            Err(e) => (None, Some(e)),
        };
        let user = Arc::new(MappedUser {
            user_name: user_name.into(),
            kind,
            source,
            password,
        });
        if let Some((key, reason)) = unresolved {
            // The entry keeps the user alive, so its address cannot be reused by another user
            // while the loader runs (a duplicate one-to-one entry is dropped from the index).
            self.unresolved_passwords.insert(
                Arc::as_ptr(&user) as usize,
                (Arc::clone(&user), key, reason),
            );
        }
        user
    }

    fn server(&mut self, raw: &RawConfig) -> Option<ServerSettings> {
        let mut listen = Vec::new();
        if raw.server.listen.is_empty() {
            self.error(
                "server.listen",
                "no HTTPS listener; add e.g. listen = [\"0.0.0.0:443\"]",
            );
        }
        for (i, addr) in raw.server.listen.iter().enumerate() {
            match addr.parse::<SocketAddr>() {
                Ok(a) => listen.push(a),
                Err(_) => self.error(
                    format!("server.listen[{i}]"),
                    format!("`{addr}` is not an IP:port address (e.g. \"0.0.0.0:443\")"),
                ),
            }
        }
        let admin_listen = match &raw.server.admin_listen {
            None => None,
            Some(addr) => match addr.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.error(
                        "server.admin_listen",
                        format!("`{addr}` is not an IP:port address (e.g. \"127.0.0.1:9090\")"),
                    );
                    None
                }
            },
        };
        let errors_before = self.errors.len();
        for (key, value) in [
            ("handshake_timeout", raw.server.handshake_timeout),
            ("header_read_timeout", raw.server.header_read_timeout),
            (
                "backend_connect_timeout",
                raw.server.backend_connect_timeout,
            ),
            (
                "backend_response_timeout",
                raw.server.backend_response_timeout,
            ),
        ] {
            if value == Some(Duration::ZERO) {
                self.error(format!("server.{key}"), "must be greater than zero");
            }
        }
        if let Some(n) = raw.server.max_header_bytes
            && n < MIN_MAX_HEADER_BYTES
        {
            self.error(
                "server.max_header_bytes",
                format!("{n} is below the minimum of {MIN_MAX_HEADER_BYTES}"),
            );
        }
        if raw.server.max_connections == Some(0) {
            self.error("server.max_connections", "must be at least 1");
        }
        if let Some(file) = &raw.server.session_ticket_keys
            && let Some(path) = self.file_value("server.session_ticket_keys", file)
        {
            match crate::tls::ticket_keys::TicketKeys::load(&path) {
                Ok(keys) => self.ticket_keys = Some(keys),
                Err(e) => self.error("server.session_ticket_keys", e.to_string()),
            }
        }
        (self.errors.len() == errors_before && listen.len() == raw.server.listen.len()).then(|| {
            ServerSettings {
                listen,
                admin_listen,
                handshake_timeout: raw
                    .server
                    .handshake_timeout
                    .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
                header_read_timeout: raw
                    .server
                    .header_read_timeout
                    .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT),
                idle_timeout: raw.server.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
                max_header_bytes: raw
                    .server
                    .max_header_bytes
                    .unwrap_or(DEFAULT_MAX_HEADER_BYTES),
                max_connections: raw
                    .server
                    .max_connections
                    .unwrap_or(DEFAULT_MAX_CONNECTIONS),
                watch_interval: raw
                    .server
                    .watch
                    .unwrap_or(false)
                    .then(|| raw.server.watch_interval.unwrap_or(DEFAULT_WATCH_INTERVAL)),
            }
        })
    }

    fn host_names(
        &mut self,
        i: usize,
        site: &RawSite,
        exact: &mut HashMap<String, usize>,
        wildcard: &mut HashMap<String, usize>,
        catch_all: &mut Option<usize>,
    ) {
        if site.host_names.is_empty() {
            match catch_all {
                Some(other) => self.error(
                    format!("site[{i}].host_names"),
                    format!(
                        "site[{other}] already serves every name not claimed by another site; \
                         give one of them host_names"
                    ),
                ),
                None => *catch_all = Some(i),
            }
            return;
        }
        for (j, name) in site.host_names.iter().enumerate() {
            let key = format!("site[{i}].host_names[{j}]");
            let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
            let (table, label) = match lower.strip_prefix("*.") {
                Some(rest) => (&mut *wildcard, rest.to_owned()),
                None => (&mut *exact, lower.clone()),
            };
            let valid = !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':')
                && !label.contains("..");
            if !valid {
                self.error(key, format!("`{name}` is not a host name"));
                continue;
            }
            if let Some(other) = table.insert(label, i) {
                if other == i {
                    self.error(key, format!("`{name}` is listed twice"));
                } else {
                    self.error(
                        key,
                        format!(
                            "`{name}` is already claimed by site[{other}]; SNI must pick one site"
                        ),
                    );
                }
            }
        }
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    /// A file name that is not an `import-iis` placeholder.
    fn file_value(&mut self, key: &str, value: &str) -> Option<PathBuf> {
        if let Some(rest) = value.strip_prefix(PLACEHOLDER_PREFIX) {
            let flag = rest.trim_end_matches(')');
            let what = if flag == "--backend" { "URL" } else { "FILE" };
            self.error(
                key,
                format!(
                    "placeholder left by `certgate import-iis`: IIS keeps this outside its XML; \
                     re-run import-iis with {flag} {what}, or set this key by hand"
                ),
            );
            return None;
        }
        if value.trim().is_empty() {
            self.error(key, "the file name is empty");
            return None;
        }
        let path = self.resolve(value);
        self.files.push(path.clone());
        Some(path)
    }

    fn site(
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
        let mut client_ca_expiry = Vec::new();
        let client_auth = self.client_auth(&key, raw, &scopes, &mut client_ca_expiry);
        let backend = self.backend(&key, raw, connect_timeout, response_timeout);
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
        let certificate_expiry = CertificateExpiry {
            server: chain.iter().filter_map(|c| not_after(c)).collect(),
            client_ca: client_ca_expiry,
        };
        let tls = match server_config(chain, key_der, Arc::clone(&client_auth), resumption) {
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
            metrics: crate::admin::metrics::SiteMetrics::new(&raw.name),
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

    fn ssl_flags(&mut self, key: &str, text: &str) -> SslFlags {
        match SslFlags::parse(text) {
            Ok((flags, warnings)) => {
                for w in warnings {
                    self.warn(key, w);
                }
                flags
            }
            Err(e) => {
                self.error(key, e.to_string());
                SslFlags::default()
            }
        }
    }

    fn scopes(&mut self, key: &str, raw: &RawSite) -> Vec<Scope> {
        let root_flags = self.ssl_flags(
            &format!("{key}.ssl_flags"),
            raw.ssl_flags.as_deref().unwrap_or("Ssl"),
        );
        let root_mapper = Arc::new(match &raw.iis_client_certificate_mapping_authentication {
            Some(section) => self.mapper(&format!("{key}.{MAPPING_KEY}"), section),
            None => Mapper::default(),
        });
        let root_directory =
            self.site_policy(raw.directory.as_ref(), None, &format!("{key}.directory"));
        let root = Scope {
            path: "/".into(),
            canonical: String::new(),
            ssl_flags: root_flags,
            anonymous: raw.anonymous_authentication.unwrap_or(false),
            mapper: root_mapper,
            directory: root_directory,
        };

        // Parents before children, so each location inherits from its nearest enclosing scope.
        let mut located: Vec<(usize, &RawLocation, String)> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (k, loc) in raw.locations.iter().enumerate() {
            let lkey = format!("{key}.location[{k}].path");
            match canonical_location(&loc.path) {
                Ok(c) if c.is_empty() => self.error(
                    lkey,
                    "a location for the site root; put these settings on the [[site]] itself",
                ),
                Ok(c) => {
                    if let Some(first) = seen.insert(c.clone(), k) {
                        self.error(
                            lkey,
                            format!("`{}` is the same location as location[{first}]", loc.path),
                        );
                    } else {
                        located.push((k, loc, c));
                    }
                }
                Err(e) => self.error(lkey, format!("`{}`: {e}", loc.path)),
            }
        }
        located.sort_by_key(|(_, _, c)| c.matches('/').count());

        let mut scopes: Vec<Scope> = Vec::new();
        for (k, loc, canonical) in located {
            let lkey = format!("{key}.location[{k}]");
            let parent = scopes
                .iter()
                .filter(|s| in_location(&canonical, &s.canonical))
                .max_by_key(|s| s.canonical.len())
                .unwrap_or(&root);
            let (parent_flags, parent_anon, parent_mapper) = (
                parent.ssl_flags,
                parent.anonymous,
                Arc::clone(&parent.mapper),
            );
            let parent_directory = parent.directory.clone();
            let ssl_flags = match &loc.ssl_flags {
                Some(text) => self.ssl_flags(&format!("{lkey}.ssl_flags"), text),
                None => parent_flags,
            };
            let mapper = match &loc.iis_client_certificate_mapping_authentication {
                Some(section) => Arc::new(self.mapper(&format!("{lkey}.{MAPPING_KEY}"), section)),
                None => parent_mapper,
            };
            let directory = self.site_policy(
                loc.directory.as_ref(),
                Some(&parent_directory),
                &format!("{lkey}.directory"),
            );
            scopes.push(Scope {
                path: loc.path.clone(),
                canonical,
                ssl_flags,
                anonymous: loc.anonymous_authentication.unwrap_or(parent_anon),
                mapper,
                directory,
            });
        }
        scopes.sort_by_key(|s| std::cmp::Reverse(s.canonical.len()));
        scopes.push(root);

        for scope in &scopes {
            self.check_directory_use(key, scope);
            if scope.mapper.enabled && !scope.ssl_flags.wants_certificate() {
                self.warn(
                    key,
                    format!(
                        "scope `{}` enables certificate mapping but ssl_flags `{}` never asks \
                         for a certificate (add SslNegotiateCert), so it can only answer 401.2",
                        scope.path, scope.ssl_flags
                    ),
                );
            }
        }
        scopes
    }

    fn site_policy(
        &mut self,
        raw: Option<&RawSiteDirectory>,
        parent: Option<&SitePolicy>,
        key: &str,
    ) -> SitePolicy {
        match SitePolicy::from_raw(raw, parent, key) {
            Ok(policy) => policy,
            Err(issues) => {
                for issue in issues {
                    self.error(issue.key, issue.reason);
                }
                SitePolicy::default()
            }
        }
    }

    fn check_directory_use(&mut self, key: &str, scope: &Scope) {
        let at = if scope.canonical.is_empty() {
            format!("{key}.directory")
        } else {
            format!("{key} location `{}`: directory", scope.path)
        };
        if scope.directory.needs_directory() && !self.has_directory {
            self.error(
                at.clone(),
                "directory checks need a [directory] section (the domain controllers to ask)",
            );
        }
        if scope.directory.certificate_mapping.is_some() && scope.mapper.enabled {
            self.error(
                at.clone(),
                "the Active Directory certificate mapper and the IIS mapper cannot both be on for \
                 one scope (IIS does not support it either); disable one of them",
            );
        }
        let credentials = scope
            .directory
            .verification
            .as_ref()
            .is_some_and(|v| v.mode == VerifyMode::Credentials);
        if credentials && scope.mapper.enabled {
            let users: Vec<Arc<MappedUser>> = scope
                .mapper
                .one_to_one
                .users()
                .chain(&scope.mapper.many_to_one_users)
                .cloned()
                .collect();
            for user in &users {
                if let Some((_, pkey, reason)) = self
                    .unresolved_passwords
                    .get(&(Arc::as_ptr(user) as usize))
                    .cloned()
                {
                    self.error(
                        pkey,
                        format!("{reason}; verify = \"credentials\" needs this mapping's password"),
                    );
                }
            }
            let without: Vec<String> = users
                .iter()
                .filter(|u| u.password.is_none())
                .map(|u| u.source.to_string())
                .collect();
            if !without.is_empty() {
                self.warn(
                    &at,
                    format!(
                        "verify = \"credentials\" but these mappings have no password, so their \
                         users get 401.1: {}",
                        without.join(", ")
                    ),
                );
            }
        }
    }

    fn mapper(&mut self, key: &str, raw: &RawIisMapping) -> Mapper {
        if let Some(method) = &raw.logon_method {
            let known = ["interactive", "batch", "network", "cleartext"];
            if !known.contains(&method.to_ascii_lowercase().as_str()) {
                self.error(
                    format!("{key}.logon_method"),
                    format!("`{method}` is not an IIS logonMethod (Interactive, Batch, Network, ClearText)"),
                );
            }
        }
        let index = self.one_to_one_list(key, raw);
        let many_key = format!("{key}.many_to_one_mappings");
        let many_to_one = match ManyToOneSet::compile(&raw.many_to_one_mappings, &many_key) {
            Ok(set) => {
                for w in set.warnings() {
                    self.warn(&many_key, w);
                }
                set
            }
            Err(errors) => {
                for e in errors {
                    self.error(e.key, e.reason);
                }
                ManyToOneSet::default()
            }
        };
        let mut many_to_one_users = Vec::with_capacity(many_to_one.len());
        for (j, (m, raw_m)) in many_to_one
            .mappings()
            .iter()
            .zip(&raw.many_to_one_mappings)
            .enumerate()
        {
            let password = self.password(
                &format!("{many_key}[{j}]"),
                raw_m.password_env.as_deref(),
                raw_m.password_file.as_deref(),
            );
            let user = self.mapped_user(
                m.user_name(),
                MappingKind::ManyToOne,
                MappingSource::Named(m.name().into()),
                password,
            );
            many_to_one_users.push(user);
        }
        Mapper {
            enabled: raw.enabled,
            one_to_one_enabled: raw.one_to_one_certificate_mappings_enabled.unwrap_or(true),
            many_to_one_enabled: raw.many_to_one_certificate_mappings_enabled.unwrap_or(true),
            one_to_one: index,
            many_to_one,
            many_to_one_users,
            default_logon_domain: raw.default_logon_domain.clone(),
        }
    }

    /// A section's `one_to_one_mappings`, indexed. Placeholders of the fast path stand for
    /// their runs, so positions (and key paths) are those of the file. Decoding, checking and
    /// hashing the inline certificates runs first, on all cores; then each entry is judged in
    /// file order, so errors come out in the same order as one entry at a time.
    fn one_to_one_list(&mut self, key: &str, raw: &RawIisMapping) -> OneToOneIndex {
        let runs = std::mem::take(&mut self.runs);
        let placeholder = |entry| fast::placeholder_run(&self.marker, runs.len(), entry);
        let parsed: Vec<FastOneToOne<'_>> = raw
            .one_to_one_mappings
            .iter()
            .filter(|e| placeholder(e).is_none())
            .map(FastOneToOne::from)
            .collect();
        let mut parsed_entries = parsed.iter();
        let mut entries: Vec<&FastOneToOne<'_>> = Vec::new();
        for entry in &raw.one_to_one_mappings {
            match placeholder(entry) {
                Some(run) => entries.extend(&runs[run]),
                None => entries.extend(parsed_entries.next()),
            }
        }
        let list: Arc<str> = format!("{key}.one_to_one_mappings").into();
        let prepared = map_entries(&entries, |j, e, scratch| {
            let digest = match (&e.certificate, &e.certificate_file) {
                (Some(text), None) => Some(digest_certificate_text(text, scratch)),
                _ => None,
            };
            // The user too, unless it needs the loader (a password) or will not be indexed.
            let user = (matches!(digest, Some(Ok(_)))
                && e.enabled != Some(false)
                && e.password_env.is_none()
                && e.password_file.is_none())
            .then(|| one_to_one_user(e, &list, j));
            Prepared { digest, user }
        });
        // Judge each entry in order; index the ones that pass all at once, then put each
        // duplicate's error where inserting one by one would have reported it: right after the
        // entry's other errors.
        let first_error = self.errors.len();
        let mut indexed = Vec::with_capacity(entries.len());
        let mut error_at = Vec::with_capacity(entries.len());
        for (j, (entry, prepared)) in entries.iter().zip(prepared).enumerate() {
            if let Some(indexable) = self.one_to_one(&list, j, entry, prepared) {
                indexed.push(indexable);
                error_at.push((j, self.errors.len()));
            }
        }
        let (index, duplicates) = OneToOneIndex::build(indexed);
        if !duplicates.is_empty() {
            let later = self.errors.split_off(first_error);
            let mut duplicates = duplicates.into_iter().peekable();
            for (k, error) in later.into_iter().enumerate() {
                while let Some((position, existing)) =
                    duplicates.next_if(|(position, _)| error_at[*position].1 <= first_error + k)
                {
                    self.duplicate(&list, error_at[position].0, &existing);
                }
                self.errors.push(error);
            }
            for (position, existing) in duplicates {
                self.duplicate(&list, error_at[position].0, &existing);
            }
        }
        drop(entries);
        drop(parsed);
        self.runs = runs;
        index
    }

    /// Entry `j` of the list at `list`, with what [`Self::one_to_one_list`] prepared for it:
    /// reports its errors, and returns what to index unless it is broken or disabled.
    fn one_to_one(
        &mut self,
        list: &Arc<str>,
        j: usize,
        raw: &FastOneToOne<'_>,
        prepared: Prepared,
    ) -> Option<([u8; 32], Arc<MappedUser>)> {
        let Prepared { digest, user } = prepared;
        // The key path, formatted only when something is reported.
        let key = || format!("{list}[{j}]");
        if raw.user_name.trim().is_empty() {
            self.error(format!("{}.user_name", key()), "the mapping names no user");
        }
        let password = if raw.password_env.is_some() || raw.password_file.is_some() {
            self.password(
                &key(),
                raw.password_env.as_deref(),
                raw.password_file.as_deref(),
            )
        } else {
            Ok(None)
        };
        let digest = match (&raw.certificate, &raw.certificate_file) {
            (Some(_), None) => digest.and_then(|d| {
                d.map_err(|problem| self.certificate_problem(&key(), "certificate", problem))
                    .ok()
            }),
            (None, Some(file)) => {
                let path = self.file_value(&format!("{}.certificate_file", key()), file);
                path.and_then(|p| match crate::tls::load_certificates(&p) {
                    Ok(mut certs) if certs.len() == 1 => certs.pop().and_then(|c| {
                        certificate_digest(&c)
                            .map_err(|problem| {
                                self.certificate_problem(&key(), "certificate_file", problem)
                            })
                            .ok()
                    }),
                    Ok(certs) => {
                        self.error(
                            format!("{}.certificate_file", key()),
                            format!(
                                "holds {} certificates; a mapping names exactly one",
                                certs.len()
                            ),
                        );
                        None
                    }
                    Err(e) => {
                        self.error(format!("{}.certificate_file", key()), e.to_string());
                        None
                    }
                })
            }
            (Some(_), Some(_)) => {
                self.error(
                    key(),
                    "set either certificate or certificate_file, not both",
                );
                None
            }
            (None, None) => {
                self.error(
                    format!("{}.certificate", key()),
                    "the mapping has no certificate (certificate or certificate_file)",
                );
                None
            }
        };
        let digest = digest?;
        if raw.enabled == Some(false) {
            return None;
        }
        // Prepared in parallel when the entry has no password; otherwise built here, so that a
        // password that cannot be read is remembered (see `Self::mapped_user`).
        let user = match user {
            Some(user) => user,
            None => self.mapped_user(
                &raw.user_name,
                MappingKind::OneToOne,
                MappingSource::Entry {
                    list: Arc::clone(list),
                    index: j,
                },
                password,
            ),
        };
        Some((digest, user))
    }

    /// Entry `j` maps the same certificate as `existing`, an earlier entry.
    fn duplicate(&mut self, list: &str, j: usize, existing: &MappedUser) {
        self.error(
            format!("{list}[{j}]"),
            format!(
                "the same certificate is already mapped by {} (IIS: duplicate collection key)",
                existing.source
            ),
        );
    }

    /// Reports a mapping certificate that cannot be used, at `key.which`.
    fn certificate_problem(&mut self, key: &str, which: &str, problem: CertificateProblem) {
        let reason = match problem {
            CertificateProblem::Text(e) => e.to_string(),
            CertificateProblem::NotX509(e) => {
                format!("decodes, but is not an X.509 certificate ({e}); IIS would answer 401.1")
            }
        };
        self.error(format!("{key}.{which}"), reason);
    }

    fn client_auth(
        &mut self,
        key: &str,
        raw: &RawSite,
        scopes: &[Scope],
        expiry: &mut Vec<i64>,
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
        for (j, file) in raw.client_ca.iter().enumerate() {
            let ckey = format!("{key}.client_ca[{j}]");
            let Some(path) = self.file_value(&ckey, file) else {
                continue;
            };
            match crate::tls::load_certificates(&path) {
                Ok(certs) => {
                    expiry.extend(certs.iter().filter_map(|c| not_after(c)));
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
        let mut crls: Vec<CertificateRevocationListDer<'static>> = Vec::new();
        for (j, file) in raw.crl.iter().enumerate() {
            let ckey = format!("{key}.crl[{j}]");
            let Some(path) = self.file_value(&ckey, file) else {
                continue;
            };
            match crate::tls::load_crls(&path) {
                Ok(mut list) => crls.append(&mut list),
                Err(e) => self.error(ckey, e.to_string()),
            }
        }
        let end_entity_only = match raw.crl_check.as_deref() {
            None | Some("chain") => false,
            Some("end_entity") => true,
            Some(other) => {
                self.error(
                    format!("{key}.crl_check"),
                    format!("`{other}` is not one of \"chain\", \"end_entity\""),
                );
                false
            }
        };
        let policy = RevocationPolicy {
            end_entity_only,
            allow_unknown_status: raw.allow_unknown_revocation_status.unwrap_or(false),
            allow_expired_crl: raw.allow_expired_crl.unwrap_or(false),
        };
        if self.errors.len() != errors_before {
            return None;
        }
        let mandatory = scopes.iter().all(|s| s.ssl_flags.require_cert);
        match ClientAuth::new(roots, crls, &policy, reporting, mandatory) {
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

/// Per-entry work done in parallel before the entries are judged in order.
#[derive(Default)]
struct Prepared {
    /// The inline certificate's digest, when the entry has only inline text.
    digest: Option<Result<[u8; 32], CertificateProblem>>,
    /// The user to index, when nothing about it needs the loader.
    user: Option<Arc<MappedUser>>,
}

/// The user of entry `j` of the list at `list`, for an entry without a password (built off the
/// loader, in parallel; one with a password goes through `Loader::mapped_user`).
fn one_to_one_user(raw: &FastOneToOne<'_>, list: &Arc<str>, j: usize) -> Arc<MappedUser> {
    Arc::new(MappedUser {
        user_name: raw.user_name.as_ref().into(),
        kind: MappingKind::OneToOne,
        source: MappingSource::Entry {
            list: Arc::clone(list),
            index: j,
        },
        password: None,
    })
}
