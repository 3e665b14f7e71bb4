//! Turns [`RawConfig`] into [`Runtime`], collecting every error with its key path.
//!
//! The [`Loader`] holds what every part needs (the file, the errors and warnings so far, the
//! files read); each concern adds its methods in a module of its own: [`server`] (listeners,
//! limits, host names), [`site`] (identity, backend), [`tls`] (client-certificate verifier),
//! [`location`] (scopes and inheritance), [`mapping`] (the IIS mapper section), [`secrets`]
//! (mapping passwords), [`table`] (the one-to-one mapping table) and [`directory`] (Active
//! Directory checks).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use x509_parser::prelude::{FromDer, X509Certificate};

use super::raw::RawConfig;
use super::{ConfigError, ConfigErrors, PLACEHOLDER_PREFIX, Runtime};
use crate::forward::headers::IdentityHeaders;
use crate::mapping::MappedUser;
use crate::tls::server::ResumptionKeys;
use server::{DEFAULT_BACKEND_CONNECT_TIMEOUT, DEFAULT_BACKEND_RESPONSE_TIMEOUT};

/// The TOML key of IIS's mapper section, in sites and locations.
const MAPPING_KEY: &str = "iis_client_certificate_mapping_authentication";

mod admin;
mod directory;
mod http_errors;
mod kerberos;
mod location;
mod mapping;
mod revocation;
mod secrets;
mod server;
mod site;
mod table;
mod tls;
mod w3c;

/// notAfter of a certificate, in Unix seconds.
fn not_after(der: &CertificateDer<'_>) -> Option<i64> {
    X509Certificate::from_der(der.as_ref())
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp())
}

/// Subject of a certificate, IIS display order (for the status page).
fn subject(der: &CertificateDer<'_>) -> String {
    crate::identity::CertFacts::parse(der)
        .map(|f| f.subject.to_display_string())
        .unwrap_or_else(|_| "(unparsable certificate)".into())
}

pub(super) struct Loader<'a> {
    file: PathBuf,
    base: PathBuf,
    resumption: &'a ResumptionKeys,
    /// `[server] session_ticket_keys`, once read.
    ticket_keys: Option<crate::tls::ticket_keys::TicketKeys>,
    /// The crypto provider of every server config, with `[server] cipher_suites` in order.
    server_tls: Arc<rustls::crypto::CryptoProvider>,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    has_directory: bool,
    /// `[kerberos].realm` when `[kerberos]` is present (SPNs without a realm get it).
    kerberos_realm: Option<String>,
    files: Vec<PathBuf>,
    /// Mapping passwords that could not be read, by the address of their [`MappedUser`]: only an
    /// error where a scope verifies credentials, since nothing else uses them.
    /// Each entry holds its user, so that the address stays unique while the loader runs.
    unresolved_passwords: HashMap<usize, (Arc<MappedUser>, String, String)>,
    /// `[log_file]`, which every site's `log_file` inherits.
    log_defaults: Option<crate::w3c::RawLogFile>,
    /// The revocation cache every site of this configuration shares.
    revocation_store: Option<Arc<crate::revocation::cache::Store>>,
    /// A mapping table read from memory instead of its file: the edit `certgate mapping` is
    /// about to write, validated before it is written.
    pending_table: Option<(&'a Path, &'a [u8])>,
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
            server_tls: crate::tls::cipher_suites::server_provider(
                crate::tls::cipher_suites::default_order(),
            ),
            errors: Vec::new(),
            warnings: Vec::new(),
            has_directory: false,
            kerberos_realm: None,
            files: vec![file.to_owned()],
            unresolved_passwords: HashMap::new(),
            log_defaults: None,
            revocation_store: None,
            pending_table: None,
        }
    }

    /// Reads the mapping table at `path` as holding `text` (see [`Self::pending_table`]).
    pub(super) fn with_pending_table(mut self, path: &'a Path, text: &'a [u8]) -> Self {
        self.pending_table = Some((path, text));
        self
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

    pub(super) fn load(mut self, text: &str) -> Result<Runtime, ConfigErrors> {
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

    /// The TOML, through the `toml` crate only; an error names its key path and position.
    fn parse(&self, text: &str) -> Result<RawConfig, ConfigErrors> {
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
        self.log_defaults = raw.log_file.clone();
        self.revocation_store = Some(self.revocation_store(raw, directory.as_ref()));
        self.kerberos_realm = raw.kerberos.as_ref().map(|k| k.realm.trim().to_owned());
        let kerberos = raw.kerberos.as_ref().and_then(|k| self.kerberos(k));
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
            kerberos,
            warnings: std::mem::take(&mut self.warnings),
            files: std::mem::take(&mut self.files),
            exact_names,
            wildcard_names,
            catch_all,
            default_site,
        })
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
}

/// What the parts' unit tests share: a loader for a file that need not exist, raw sections
/// from TOML snippets, and lookups of the errors it collected.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod testing {
    use std::path::Path;

    use super::Loader;
    use crate::tls::server::ResumptionKeys;

    /// The configuration file the test loaders pretend to read.
    pub(super) const FILE: &str = "/etc/certgate/certgate.toml";

    pub(super) fn loader(keys: &ResumptionKeys) -> Loader<'_> {
        Loader::new(Path::new(FILE), keys)
    }

    /// A raw section (`RawSite`, `RawConfig`, ...) from TOML text.
    pub(super) fn raw<T: serde::de::DeserializeOwned>(text: &str) -> T {
        toml::from_str(text).unwrap_or_else(|e| panic!("bad test TOML: {e}\n{text}"))
    }

    /// The keys of every error so far, in order.
    pub(super) fn keys(loader: &Loader<'_>) -> Vec<String> {
        loader.errors.iter().map(|e| e.key.clone()).collect()
    }

    /// The reason of the one error at `key`; panics if there is none or more than one.
    pub(super) fn reason(loader: &Loader<'_>, key: &str) -> String {
        let found: Vec<_> = loader.errors.iter().filter(|e| e.key == key).collect();
        assert_eq!(found.len(), 1, "errors at `{key}`: {:#?}", loader.errors);
        assert_eq!(found[0].file, Path::new(FILE));
        found[0].reason.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::path::Path;

    use super::testing::{FILE, loader, reason};
    use crate::tls::server::ResumptionKeys;

    #[test]
    fn syntax_errors_give_line_and_column() {
        let keys = ResumptionKeys::default();
        let errors = loader(&keys)
            .load("[server]\nlisten = [\"127.0.0.1:1\"]\nbogus = = 1\n")
            .unwrap_err();
        assert_eq!(errors.0.len(), 1, "{errors}");
        assert!(errors.0[0].reason.contains("(line 3, column"), "{errors}");
        assert_eq!(errors.0[0].file, Path::new(FILE));
    }

    #[test]
    fn type_errors_name_the_key_path() {
        let keys = ResumptionKeys::default();
        let errors = loader(&keys)
            .load("[server]\nlisten = [\"127.0.0.1:1\"]\nmax_connections = \"many\"\n")
            .unwrap_err();
        assert_eq!(errors.0[0].key, "server.max_connections", "{errors}");
        assert!(errors.0[0].reason.contains("line 3"), "{errors}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let keys = ResumptionKeys::default();
        let errors = loader(&keys)
            .load("[server]\nlisten = [\"nowhere\"]\nmax_connections = 0\n")
            .unwrap_err();
        let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
        for key in ["server.listen[0]", "server.max_connections", "site"] {
            assert!(keys.contains(&key), "no `{key}` in {keys:?}");
        }
    }

    #[test]
    fn file_names_resolve_against_the_configuration_directory() {
        let keys = ResumptionKeys::default();
        let mut l = loader(&keys);
        let relative = l.file_value("k", "certs/a.pem").unwrap();
        assert_eq!(relative, Path::new("/etc/certgate/certs/a.pem"));
        let absolute = l.file_value("k", "/srv/b.pem").unwrap();
        assert_eq!(absolute, Path::new("/srv/b.pem"));
        // The watcher learns of every file read.
        assert!(l.files.contains(&relative) && l.files.contains(&absolute));
        assert!(l.errors.is_empty());
    }

    #[test]
    fn placeholders_and_empty_file_names_are_errors() {
        let keys = ResumptionKeys::default();
        let mut l = loader(&keys);
        assert!(l.file_value("a", "IMPORT-PLACEHOLDER(--pfx)").is_none());
        assert!(l.file_value("b", "IMPORT-PLACEHOLDER(--backend)").is_none());
        assert!(l.file_value("c", "  ").is_none());
        assert!(reason(&l, "a").contains("re-run import-iis with --pfx FILE"));
        assert!(reason(&l, "b").contains("--backend URL"));
        assert!(reason(&l, "c").contains("empty"));
        assert_eq!(l.files, vec![Path::new(FILE).to_path_buf()]);
    }

    #[test]
    fn the_same_error_from_a_shared_mapper_is_reported_once() {
        let keys = ResumptionKeys::default();
        // Both sites have the same broken server certificate path: distinct keys, two errors;
        // but a repeated identical error collapses.
        let text = "[server]\nlisten = [\"127.0.0.1:1\"]\n\
                    [[site]]\nname = \"a\"\nhost_names = [\"a.test\"]\nbackend = \"http://127.0.0.1:9\"\n\
                    [[site]]\nname = \"b\"\nhost_names = [\"a.test\"]\nbackend = \"http://127.0.0.1:9\"\n";
        let errors = loader(&keys).load(text).unwrap_err();
        let mut seen = std::collections::HashSet::new();
        assert!(errors.0.iter().all(|e| seen.insert(e.clone())), "{errors}");
        assert!(errors.0.iter().any(|e| e.key == "site[1].host_names[0]"));
    }
}
