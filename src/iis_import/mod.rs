//! `certgate import-iis`: turns IIS's own XML into a certgate configuration that behaves the same.
//!
//! The importer resolves configuration exactly as IIS merges it, then emits *effective* values
//! for every site and for every sub-path that differs from its parent, so the output does not
//! depend on subtle inheritance. Merge order, most general first:
//!
//! 1. section defaults (IIS schema);
//! 2. server-level `<system.webServer>` and `<location path="">` in applicationHost.config;
//! 3. `<location path="Site">`, then `<location path="Site/a">`, `Site/a/b` (longest last);
//! 4. web.config files given with `--web-config PATH=SITE/PATH`, shallowest first.
//!
//! Attributes inherit one by one. Collections inherit and merge: child `<add>`s append after the
//! inherited entries, `<clear/>` drops everything inherited so far, `<remove>` drops one entry by
//! its collection key, and a duplicate key is an error (IIS 500.19, 0x800700b7).
//!
//! Nothing is silently dropped: whatever is not translated is listed in
//! [`Imported::untranslated`], and whatever is translated with a caveat in
//! [`Imported::warnings`]. Values IIS keeps outside its XML (TLS certificate, trust anchors,
//! backend) come from [`ImportOptions`] or are left as [`placeholder`]s that `certgate check`
//! recognises.

pub mod cli;
mod xml;

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::CertificateDer;

use crate::config::raw::{
    RawConfig, RawIisMapping, RawLocation, RawManyToOne, RawOneToOne, RawRule, RawSite,
};
use crate::identity::CertFacts;
use xml::{At, FileKind, Fragment, ManyToOne, OneToOne, Op, Password, Site, SslFlags};

/// Prefix of every placeholder value; `certgate check` recognises it and names the flag.
pub use crate::config::PLACEHOLDER_PREFIX;

/// The placeholder for a value the flag `flag` (e.g. `--certificate`) would have supplied.
pub fn placeholder(flag: &str) -> String {
    format!("{PLACEHOLDER_PREFIX}{flag})")
}

/// A web.config and the configuration path it sits at.
#[derive(Debug, Clone)]
pub struct WebConfigInput {
    /// Name used in messages (usually the file path).
    pub file: String,
    /// The XML text.
    pub content: String,
    /// `SITE` or `SITE/sub/path`: where the file applies.
    pub site_path: String,
}

impl WebConfigInput {
    /// Parses the CLI form `PATH=SITE/PATH`, splitting at the first `=`, and takes the content
    /// from the caller (the library never reads files).
    pub fn from_arg(arg: &str, content: String) -> Result<Self, ImportError> {
        let (file, site_path) = split_web_config_arg(arg)?;
        Ok(Self {
            file: file.to_owned(),
            content,
            site_path: site_path.to_owned(),
        })
    }
}

/// Splits `PATH=SITE/PATH` at the first `=`; both sides must be non-empty.
pub fn split_web_config_arg(arg: &str) -> Result<(&str, &str), ImportError> {
    match arg.split_once('=') {
        Some((file, site)) if !file.trim().is_empty() && !xml::split_path(site).is_empty() => {
            Ok((file, site))
        }
        _ => Err(ImportError::BadWebConfigArg {
            arg: arg.to_owned(),
        }),
    }
}

/// What the XML does not say, supplied by flags and applied to every imported site.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Name of the applicationHost.config for messages.
    pub app_host_file: String,
    /// `--site`: import only these sites (case-insensitive). Empty: every site with an https
    /// binding.
    pub sites: Vec<String>,
    /// `--listen`: `server.listen`. Empty: derived from the https bindings.
    pub listen: Vec<String>,
    /// `--certificate`.
    pub certificate: Option<String>,
    /// `--private-key`.
    pub private_key: Option<String>,
    /// `--pfx`; replaces certificate and private key.
    pub pfx: Option<String>,
    /// `--client-ca`.
    pub client_ca: Vec<String>,
    /// `--backend`.
    pub backend: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            app_host_file: "applicationHost.config".to_owned(),
            sites: Vec::new(),
            listen: Vec::new(),
            certificate: None,
            private_key: None,
            pfx: None,
            client_ca: Vec::new(),
            backend: None,
        }
    }
}

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The certgate configuration.
    pub config: RawConfig,
    /// Translated, but needs the operator's attention (passwords, placeholders, corrupt
    /// one-to-one certificates, settings that made IIS misbehave).
    pub warnings: Vec<String>,
    /// Found in the XML and not translated.
    pub untranslated: Vec<String>,
}

/// Why an import failed. Configuration IIS itself would reject (500.19) is an error here too.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file is not well-formed XML.
    #[error("{file}:{line}:{column}: malformed XML: {message}")]
    Xml {
        /// File name as given.
        file: String,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        column: u32,
        /// The parser's message.
        message: String,
    },
    /// Well-formed XML that IIS would reject: a bad value or a missing required attribute.
    #[error("{file}:{line}:{column}: {message}")]
    InvalidConfig {
        /// File name as given.
        file: String,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        column: u32,
        /// What is wrong.
        message: String,
    },
    /// Two entries with the same collection key after merging (IIS 500.19, 0x800700b7).
    #[error(
        "{file}:{line}:{column}: duplicate {collection} entry '{key}' in {scope} \
         (IIS: 500.19, 0x800700b7 \"Cannot add duplicate collection entry\")"
    )]
    DuplicateKey {
        /// File of the second entry.
        file: String,
        /// Line of the second entry.
        line: u32,
        /// Column of the second entry.
        column: u32,
        /// The configuration level that added it, e.g. `<location path="Site/app">`.
        scope: String,
        /// `oneToOneMappings`, `manyToOneMappings` or `rules`.
        collection: &'static str,
        /// The duplicated key.
        key: String,
    },
    /// `--site` or a `--web-config` path names a site applicationHost.config does not have.
    #[error("no site named '{name}' in applicationHost.config (sites: {known})")]
    UnknownSite {
        /// The name asked for.
        name: String,
        /// The sites that exist, comma-separated.
        known: String,
    },
    /// `--web-config` is not `PATH=SITE[/PATH]`.
    #[error("--web-config '{arg}': expected PATH=SITE[/PATH], e.g. 'app/web.config=Contoso/app'")]
    BadWebConfigArg {
        /// The argument as given.
        arg: String,
    },
    /// No site has an https binding and no `--site` was given.
    #[error("no site has an https binding; name the sites to import with --site")]
    NothingToImport,
    /// Reading an input file.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the output file.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Serialising the configuration.
    #[error("serialising the configuration as TOML")]
    Toml(#[source] toml::ser::Error),
}

/// Imports applicationHost.config plus any web.config files. Never prints; the caller shows
/// [`Imported::warnings`] and [`Imported::untranslated`].
pub fn import(
    app_host: &str,
    web_configs: &[WebConfigInput],
    opts: &ImportOptions,
) -> Result<Imported, ImportError> {
    let mut parsed = xml::parse(app_host, &opts.app_host_file, &FileKind::AppHost, 0)?;
    let mut warnings = std::mem::take(&mut parsed.warnings);
    let mut untranslated = std::mem::take(&mut parsed.untranslated);
    let sites = std::mem::take(&mut parsed.sites);
    let known = || {
        sites
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let site_named = |name: &str| sites.iter().find(|s| s.name.eq_ignore_ascii_case(name));

    let mut fragments = std::mem::take(&mut parsed.fragments);
    for (i, wc) in web_configs.iter().enumerate() {
        let path = xml::split_path(&wc.site_path);
        let Some(site_name) = path.first() else {
            return Err(ImportError::BadWebConfigArg {
                arg: format!("{}={}", wc.file, wc.site_path),
            });
        };
        if site_named(site_name).is_none() {
            return Err(ImportError::UnknownSite {
                name: site_name.clone(),
                known: known(),
            });
        }
        let seq_start = (i + 1) * 1_000_000;
        let mut file = xml::parse(
            &wc.content,
            &wc.file,
            &FileKind::WebConfig(&path),
            seq_start,
        )?;
        fragments.append(&mut file.fragments);
        warnings.append(&mut file.warnings);
        untranslated.append(&mut file.untranslated);
    }
    fragments.sort_by_key(|f| f.rank);

    let selected: Vec<&Site> = if opts.sites.is_empty() {
        let with_https: Vec<&Site> = sites.iter().filter(|s| has_https(s)).collect();
        for site in sites.iter().filter(|s| !has_https(s)) {
            untranslated.push(format!(
                "site '{}' has no https binding and is not imported (certgate terminates \
                 https only; use --site to import it anyway)",
                site.name
            ));
        }
        with_https
    } else {
        let mut chosen: Vec<&Site> = Vec::new();
        for name in &opts.sites {
            let site = site_named(name).ok_or_else(|| ImportError::UnknownSite {
                name: name.clone(),
                known: known(),
            })?;
            if chosen.iter().any(|s| std::ptr::eq(*s, site)) {
                continue;
            }
            if !has_https(site) {
                warnings.push(format!(
                    "site '{}' has no https binding; imported because --site names it, \
                     without host names or a derived listener",
                    site.name
                ));
            }
            chosen.push(site);
        }
        chosen
    };
    if selected.is_empty() {
        return Err(ImportError::NothingToImport);
    }
    for wc in web_configs {
        let path = xml::split_path(&wc.site_path);
        let site = path.first().map(String::as_str).unwrap_or_default();
        if !selected.iter().any(|s| s.name.eq_ignore_ascii_case(site)) {
            warnings.push(format!(
                "{}: applies to site '{site}', which is not imported",
                wc.file
            ));
        }
    }
    for frag in &fragments {
        if let Some(first) = frag.path.first()
            && site_named(first).is_none()
        {
            untranslated.push(format!(
                "{}: {} matches no site; not imported",
                frag.at, frag.scope
            ));
        }
    }
    check_locks(&fragments, &parsed.section_override_default, &mut warnings);

    let missing: Vec<&str> = [
        (
            opts.certificate.is_none() && opts.pfx.is_none(),
            "--certificate",
        ),
        (
            opts.private_key.is_none() && opts.pfx.is_none(),
            "--private-key",
        ),
        (opts.client_ca.is_empty(), "--client-ca"),
        (opts.backend.is_none(), "--backend"),
    ]
    .into_iter()
    .filter_map(|(missing, flag)| missing.then_some(flag))
    .collect();
    if !missing.is_empty() {
        warnings.push(format!(
            "IIS keeps the TLS certificate, trusted client CAs and backend outside its XML; \
             every site carries {PLACEHOLDER_PREFIX}<flag>) values for {}: edit them or \
             import again with those flags",
            missing.join(", ")
        ));
    }

    let mut ctx = Emit {
        opts,
        warnings,
        untranslated,
        encrypted: Vec::new(),
        plain: Vec::new(),
        checked_certificates: Vec::new(),
    };
    let mut config = RawConfig::default();
    for site in &selected {
        let raw = ctx.site(site, &fragments)?;
        config.sites.push(raw);
    }
    ctx.listeners(&selected, &mut config);
    ctx.finish_passwords();
    Ok(Imported {
        config,
        warnings: dedup(ctx.warnings),
        untranslated: dedup(ctx.untranslated),
    })
}

/// Renders an import as TOML, with the warnings and untranslated items as comments on top so
/// they travel with the file.
pub fn to_toml(imported: &Imported) -> Result<String, ImportError> {
    let body = toml::to_string_pretty(&imported.config).map_err(ImportError::Toml)?;
    let mut out = String::from(
        "# Generated by `certgate import-iis`. Review every item below, then run\n\
         # `certgate check`.\n",
    );
    for (title, items) in [
        ("Warnings", &imported.warnings),
        ("Not translated", &imported.untranslated),
    ] {
        if items.is_empty() {
            continue;
        }
        out.push_str(&format!("#\n# {title}:\n"));
        for item in items {
            for (i, line) in item.lines().enumerate() {
                let lead = if i == 0 { "# - " } else { "#   " };
                out.push_str(lead);
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push('\n');
    out.push_str(&body);
    Ok(out)
}

fn has_https(site: &Site) -> bool {
    site.bindings
        .iter()
        .any(|b| b.protocol.eq_ignore_ascii_case("https"))
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn is_prefix(prefix: &[String], path: &[String]) -> bool {
    prefix.len() <= path.len()
        && prefix
            .iter()
            .zip(path)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// The configuration in force at one path after merging.
#[derive(Debug, Clone, Default, PartialEq)]
struct Effective {
    ssl_flags: SslFlags,
    anonymous: bool,
    /// `None` until some level mentions the section; IIS defaults then apply.
    mapper: Option<MapperState>,
    /// Other authentication modules by lowercased element name: (name as written, enabled).
    other_auth: BTreeMap<String, (String, bool)>,
}

impl Effective {
    /// Only what certgate emits; used to decide whether a sub-path needs its own location.
    fn emitted_eq(&self, other: &Self) -> bool {
        self.ssl_flags == other.ssl_flags
            && self.anonymous == other.anonymous
            && self.mapper == other.mapper
    }
}

#[derive(Debug, Clone, PartialEq)]
struct MapperState {
    enabled: bool,
    one_to_one_enabled: bool,
    many_to_one_enabled: bool,
    default_logon_domain: String,
    logon_method: &'static str,
    one_to_one: Vec<OneToOne>,
    many_to_one: Vec<ManyToOne>,
}

impl Default for MapperState {
    /// IIS schema defaults for the section.
    fn default() -> Self {
        Self {
            enabled: false,
            one_to_one_enabled: true,
            many_to_one_enabled: true,
            default_logon_domain: String::new(),
            logon_method: "ClearText",
            one_to_one: Vec::new(),
            many_to_one: Vec::new(),
        }
    }
}

/// Merges every fragment that applies at `path`, in IIS order.
fn resolve(
    fragments: &[Fragment],
    path: &[String],
    warnings: &mut Vec<String>,
) -> Result<Effective, ImportError> {
    let mut eff = Effective::default();
    for frag in fragments.iter().filter(|f| is_prefix(&f.path, path)) {
        if let Some(flags) = frag.ssl_flags {
            eff.ssl_flags = flags;
        }
        if let Some(anonymous) = frag.anonymous {
            eff.anonymous = anonymous;
        }
        for (name, enabled) in &frag.other_auth {
            let entry = eff
                .other_auth
                .entry(name.to_ascii_lowercase())
                .or_insert_with(|| (name.clone(), false));
            if let Some(enabled) = enabled {
                entry.1 = *enabled;
            }
        }
        let Some(m) = &frag.mapper else { continue };
        let state = eff.mapper.get_or_insert_with(MapperState::default);
        if let Some(v) = m.enabled {
            state.enabled = v;
        }
        if let Some(v) = m.one_to_one_enabled {
            state.one_to_one_enabled = v;
        }
        if let Some(v) = m.many_to_one_enabled {
            state.many_to_one_enabled = v;
        }
        if let Some(v) = &m.default_logon_domain {
            state.default_logon_domain.clone_from(v);
        }
        if let Some(v) = m.logon_method {
            state.logon_method = v;
        }
        merge(&mut state.one_to_one, &m.one_to_one, frag, warnings)?;
        merge(&mut state.many_to_one, &m.many_to_one, frag, warnings)?;
    }
    Ok(eff)
}

/// An entry of an IIS collection that inherits across levels.
trait CollectionEntry: Clone {
    /// The collection's element name, for messages.
    const COLLECTION: &'static str;
    /// The collection key as written.
    fn key(&self) -> &str;
    /// Where the entry was added.
    fn at(&self) -> &At;
    /// Key equality under the schema's case rule.
    fn same_key(a: &str, b: &str) -> bool;
}

impl CollectionEntry for OneToOne {
    const COLLECTION: &'static str = "oneToOneMappings";
    fn key(&self) -> &str {
        &self.certificate
    }
    fn at(&self) -> &At {
        &self.at
    }
    /// `certificate` is declared `caseSensitive="true"` (base64 is case-sensitive anyway).
    fn same_key(a: &str, b: &str) -> bool {
        a == b
    }
}

impl CollectionEntry for ManyToOne {
    const COLLECTION: &'static str = "manyToOneMappings";
    fn key(&self) -> &str {
        &self.name
    }
    fn at(&self) -> &At {
        &self.at
    }
    /// IIS collection keys compare case-insensitively unless the schema says otherwise.
    fn same_key(a: &str, b: &str) -> bool {
        a.to_lowercase() == b.to_lowercase()
    }
}

/// Applies one level's collection operations to the inherited entries.
fn merge<T: CollectionEntry>(
    entries: &mut Vec<T>,
    ops: &[Op<T>],
    frag: &Fragment,
    warnings: &mut Vec<String>,
) -> Result<(), ImportError> {
    let collection = T::COLLECTION;
    for op in ops {
        match op {
            Op::Clear => entries.clear(),
            Op::Remove { key: gone, at } => {
                let before = entries.len();
                entries.retain(|e| !T::same_key(e.key(), gone));
                if entries.len() == before {
                    warnings.push(format!(
                        "{at}: {}: <remove> of {collection} entry '{}' removes nothing",
                        frag.scope,
                        shorten(gone)
                    ));
                }
            }
            Op::Add(entry) => {
                if entries.iter().any(|e| T::same_key(e.key(), entry.key())) {
                    let at = entry.at();
                    return Err(ImportError::DuplicateKey {
                        file: at.file.clone(),
                        line: at.line,
                        column: at.column,
                        scope: frag.scope.clone(),
                        collection,
                        key: shorten(entry.key()),
                    });
                }
                entries.push(entry.clone());
            }
        }
    }
    Ok(())
}

/// Keys can be whole certificates; keep messages readable.
fn shorten(key: &str) -> String {
    if key.chars().count() > 40 {
        let head: String = key.chars().take(32).collect();
        format!("{head}...")
    } else {
        key.to_owned()
    }
}

/// Warns about sections a web.config sets although applicationHost.config locks them: IIS
/// answers every request below that path with 500.19 (0x80070021), certgate would not.
fn check_locks(
    fragments: &[Fragment],
    defaults: &BTreeMap<String, bool>,
    warnings: &mut Vec<String>,
) {
    for frag in fragments.iter().filter(|f| f.from_web_config) {
        for section in &frag.sections {
            let unlocked_by_location = fragments
                .iter()
                .filter(|f| {
                    !f.from_web_config
                        && f.override_allow.is_some()
                        && f.sections.contains(section)
                        && is_prefix(&f.path, &frag.path)
                })
                .max_by_key(|f| f.rank)
                .and_then(|f| f.override_allow);
            // The shipped configSections lock all three sections; assume so when undeclared.
            let allowed = unlocked_by_location
                .unwrap_or_else(|| defaults.get(*section).copied().unwrap_or(false));
            if !allowed {
                warnings.push(format!(
                    "{}: sets {section}, which applicationHost.config locks \
                     (overrideModeDefault=\"Deny\" and no <location path=\"{}\" \
                     overrideMode=\"Allow\"> unlocking it): IIS answers 500.19 (0x80070021) \
                     below this path; certgate applies the setting",
                    frag.at,
                    frag.path.first().map(String::as_str).unwrap_or_default()
                ));
            }
        }
    }
}

/// Output state shared across sites: messages and password placeholders.
struct Emit<'a> {
    opts: &'a ImportOptions,
    warnings: Vec<String>,
    untranslated: Vec<String>,
    /// (description, env var) of mappings whose password is `[enc:...:enc]`.
    encrypted: Vec<(String, String)>,
    /// (description, env var) of mappings with a plain-text password in the XML.
    plain: Vec<(String, String)>,
    /// One-to-one entries already validated, so a corrupt blob is reported once.
    checked_certificates: Vec<At>,
}

/// Per-site password placeholder numbering: one variable per source `<add>` element, shared by
/// every location that inherits it.
struct SitePasswords {
    prefix: String,
    assigned: Vec<(At, String)>,
}

impl SitePasswords {
    fn new(site: &str) -> Self {
        let mut prefix = String::from("CERTGATE_PW_");
        let mut last_underscore = true;
        for c in site.chars() {
            if c.is_ascii_alphanumeric() {
                prefix.push(c.to_ascii_uppercase());
                last_underscore = false;
            } else if !last_underscore {
                prefix.push('_');
                last_underscore = true;
            }
        }
        if !prefix.ends_with('_') {
            prefix.push('_');
        }
        Self {
            prefix,
            assigned: Vec::new(),
        }
    }

    /// Returns the variable for the element at `at`, and whether it was newly assigned.
    fn env_for(&mut self, at: &At) -> (String, bool) {
        if let Some((_, name)) = self.assigned.iter().find(|(a, _)| a == at) {
            return (name.clone(), false);
        }
        let name = format!("{}{}", self.prefix, self.assigned.len() + 1);
        self.assigned.push((at.clone(), name.clone()));
        (name, true)
    }
}

impl Emit<'_> {
    fn site(&mut self, site: &Site, fragments: &[Fragment]) -> Result<RawSite, ImportError> {
        let root = vec![site.name.clone()];
        let root_eff = resolve(fragments, &root, &mut self.warnings)?;
        let mut passwords = SitePasswords::new(&site.name);

        let mut raw = RawSite {
            name: site.name.clone(),
            ..RawSite::default()
        };
        self.bindings(site, &mut raw);
        match &self.opts.pfx {
            Some(pfx) => raw.pfx = Some(pfx.clone()),
            None => {
                raw.certificate = Some(
                    self.opts
                        .certificate
                        .clone()
                        .unwrap_or_else(|| placeholder("--certificate")),
                );
                raw.private_key = Some(
                    self.opts
                        .private_key
                        .clone()
                        .unwrap_or_else(|| placeholder("--private-key")),
                );
            }
        }
        raw.client_ca = if self.opts.client_ca.is_empty() {
            vec![placeholder("--client-ca")]
        } else {
            self.opts.client_ca.clone()
        };
        raw.backend = self
            .opts
            .backend
            .clone()
            .unwrap_or_else(|| placeholder("--backend"));
        raw.ssl_flags = Some(root_eff.ssl_flags.render());
        raw.anonymous_authentication = Some(root_eff.anonymous);
        raw.iis_client_certificate_mapping_authentication = root_eff
            .mapper
            .as_ref()
            .map(|m| self.mapping(&site.name, m, &mut passwords));
        self.scope_notes(&site.name, "/", &root_eff);

        // Every deeper path some level configures, shallowest first.
        let mut sub_paths: Vec<Vec<String>> = Vec::new();
        for frag in fragments {
            if frag.path.len() > 1
                && is_prefix(&root, &frag.path)
                && !sub_paths
                    .iter()
                    .any(|p| is_prefix(p, &frag.path) && p.len() == frag.path.len())
            {
                sub_paths.push(frag.path.clone());
            }
        }
        sub_paths.sort_by_key(Vec::len);
        let mut emitted: Vec<(Vec<String>, Effective)> = vec![(root, root_eff)];
        for path in sub_paths {
            let eff = resolve(fragments, &path, &mut self.warnings)?;
            let url = format!("/{}", path[1..].join("/"));
            self.scope_notes(&site.name, &url, &eff);
            let parent = emitted
                .iter()
                .filter(|(p, _)| is_prefix(p, &path))
                .max_by_key(|(p, _)| p.len())
                .map(|(_, e)| e);
            if parent.is_some_and(|p| p.emitted_eq(&eff)) {
                continue;
            }
            raw.locations.push(RawLocation {
                path: url,
                ssl_flags: Some(eff.ssl_flags.render()),
                anonymous_authentication: Some(eff.anonymous),
                iis_client_certificate_mapping_authentication: eff
                    .mapper
                    .as_ref()
                    .map(|m| self.mapping(&site.name, m, &mut passwords)),
                directory: None,
                backend_kerberos: None,
            });
            emitted.push((path, eff));
        }
        Ok(raw)
    }

    fn bindings(&mut self, site: &Site, raw: &mut RawSite) {
        for b in &site.bindings {
            if !b.protocol.eq_ignore_ascii_case("https") {
                self.untranslated.push(format!(
                    "site '{}': {} binding '{}' not imported (certgate terminates https only)",
                    site.name, b.protocol, b.information
                ));
                continue;
            }
            let host = b.information.rsplit_once(':').map_or("", |(_, h)| h).trim();
            if host.is_empty() {
                self.warnings.push(format!(
                    "site '{}': https binding '{}' has no host name, so IIS serves every name on \
                     that address; certgate selects sites by SNI: list the names in host_names \
                     (the first such site becomes server.default_site)",
                    site.name, b.information
                ));
            } else if !raw.host_names.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                raw.host_names.push(host.to_owned());
            }
            if let Some(flags) = &b.ssl_flags {
                self.binding_flags(&site.name, &b.information, flags);
            }
        }
    }

    fn binding_flags(&mut self, site: &str, info: &str, flags: &str) {
        let Ok(n) = flags.trim().parse::<u32>() else {
            self.untranslated.push(format!(
                "site '{site}': binding '{info}' sslFlags=\"{flags}\" is not a number; ignored"
            ));
            return;
        };
        const MEANINGS: &[(u32, &str)] = &[
            (
                2,
                "Central Certificate Store (supply the certificate with --certificate/--pfx)",
            ),
            (4, "HTTP/2 disabled"),
            (8, "OCSP stapling disabled"),
            (16, "QUIC disabled"),
            (32, "TLS 1.3 over TCP disabled"),
            (64, "legacy TLS disabled"),
        ];
        // Bit 1 (SNI) is what certgate always does.
        let mut rest = n & !1;
        for (bit, meaning) in MEANINGS {
            if rest & bit != 0 {
                self.untranslated.push(format!(
                    "site '{site}': binding '{info}' sslFlags {bit}: {meaning}; not translated"
                ));
                rest &= !bit;
            }
        }
        if rest != 0 {
            self.untranslated.push(format!(
                "site '{site}': binding '{info}' sslFlags has unknown bits {rest}; ignored"
            ));
        }
    }

    /// Warnings and untranslated items about one scope's effective settings.
    fn scope_notes(&mut self, site: &str, url: &str, eff: &Effective) {
        for (name, enabled) in eff.other_auth.values() {
            if *enabled {
                if name == "clientCertificateMappingAuthentication" {
                    self.untranslated.push(format!(
                        "site '{site}' path {url}: {name} (the Active Directory mapper) is \
                         enabled; IIS keeps its domain controllers outside the XML, so set it up \
                         by hand: a [directory] section and [site.directory.certificate_mapping] \
                         enabled = true (README: Active Directory)"
                    ));
                } else {
                    self.untranslated.push(format!(
                        "site '{site}' path {url}: {name} is enabled; certgate does not \
                         implement it"
                    ));
                }
            }
        }
        let Some(m) = &eff.mapper else { return };
        if !m.enabled {
            return;
        }
        if !eff.ssl_flags.negotiate_cert && !eff.ssl_flags.require_cert {
            self.warnings.push(format!(
                "site '{site}' path {url}: the certificate mapper is enabled but sslFlags lacks \
                 SslNegotiateCert, so IIS never asks for a certificate (401.2); imported as is"
            ));
        }
        if eff.anonymous {
            self.warnings.push(format!(
                "site '{site}' path {url}: anonymous authentication is enabled alongside the \
                 certificate mapper, so requests without a matching certificate are served \
                 anonymously; imported as is"
            ));
        }
    }

    fn mapping(&mut self, site: &str, m: &MapperState, pw: &mut SitePasswords) -> RawIisMapping {
        let one_to_one = m
            .one_to_one
            .iter()
            .map(|e| {
                self.check_certificate(site, e);
                RawOneToOne {
                    user_name: e.user_name.clone(),
                    certificate: Some(e.certificate.clone()),
                    enabled: e.enabled,
                    password_env: self.password_env(
                        pw,
                        e.password,
                        &e.at,
                        format!("site '{site}', one-to-one user '{}'", e.user_name),
                    ),
                    ..RawOneToOne::default()
                }
            })
            .collect();
        for e in m
            .many_to_one
            .iter()
            .filter(|e| e.user_name.trim().is_empty())
        {
            self.warnings.push(format!(
                "{}: site '{site}', many-to-one mapping '{}' has no userName; IIS rejects it \
                 (nonEmptyString) and so does `certgate check`",
                e.at, e.name
            ));
        }
        let many_to_one = m
            .many_to_one
            .iter()
            .map(|e| RawManyToOne {
                name: e.name.clone(),
                description: e.description.clone(),
                enabled: e.enabled,
                permission_mode: Some(e.permission.unwrap_or("Allow").to_owned()),
                user_name: e.user_name.clone(),
                password_env: self.password_env(
                    pw,
                    e.password,
                    &e.at,
                    format!(
                        "site '{site}', many-to-one mapping '{}' (user '{}')",
                        e.name, e.user_name
                    ),
                ),
                password_file: None,
                rules: e
                    .rules
                    .iter()
                    .map(|r| RawRule {
                        certificate_field: r.field.to_owned(),
                        certificate_sub_field: r.sub_field.clone(),
                        match_criteria: r.criteria.clone(),
                        compare_case_sensitive: Some(r.case_sensitive),
                    })
                    .collect(),
            })
            .collect();
        RawIisMapping {
            enabled: m.enabled,
            one_to_one_certificate_mappings_enabled: Some(m.one_to_one_enabled),
            many_to_one_certificate_mappings_enabled: Some(m.many_to_one_enabled),
            default_logon_domain: (!m.default_logon_domain.is_empty())
                .then(|| m.default_logon_domain.clone()),
            logon_method: Some(m.logon_method.to_owned()),
            one_to_one_mappings: one_to_one,
            many_to_one_mappings: many_to_one,
        }
    }

    fn password_env(
        &mut self,
        pw: &mut SitePasswords,
        password: Password,
        at: &At,
        what: String,
    ) -> Option<String> {
        let list = match password {
            Password::Absent => return None,
            Password::Encrypted => &mut self.encrypted,
            Password::Plain => &mut self.plain,
        };
        let (env, new) = pw.env_for(at);
        if new {
            list.push((what, env.clone()));
        }
        Some(env)
    }

    fn check_certificate(&mut self, site: &str, e: &OneToOne) {
        if self.checked_certificates.contains(&e.at) {
            return;
        }
        self.checked_certificates.push(e.at.clone());
        let parsed = STANDARD
            .decode(&e.certificate)
            .map_err(|err| err.to_string())
            .and_then(|der| {
                CertFacts::parse(&CertificateDer::from(der)).map_err(|err| err.to_string())
            });
        if let Err(err) = parsed {
            self.warnings.push(format!(
                "{}: site '{site}', one-to-one mapping for user '{}': the certificate does not \
                 decode ({err}); IIS answers 401.1 (0x80093102) for it; emitted unchanged so \
                 `certgate check` rejects it visibly",
                e.at, e.user_name
            ));
        }
    }

    fn listeners(&mut self, sites: &[&Site], config: &mut RawConfig) {
        if !self.opts.listen.is_empty() {
            config.server.listen.clone_from(&self.opts.listen);
            return;
        }
        for site in sites {
            for b in site
                .bindings
                .iter()
                .filter(|b| b.protocol.eq_ignore_ascii_case("https"))
            {
                let Some((addr, _host)) = b.information.rsplit_once(':') else {
                    continue;
                };
                let Some((ip, port)) = addr.rsplit_once(':') else {
                    continue;
                };
                let ip = match ip.trim() {
                    "*" | "" => "0.0.0.0",
                    other => other,
                };
                let listen = format!("{ip}:{}", port.trim());
                if !config.server.listen.contains(&listen) {
                    config.server.listen.push(listen);
                }
            }
        }
        let wildcard_ports: Vec<&str> = config
            .server
            .listen
            .iter()
            .filter_map(|l| l.strip_prefix("0.0.0.0:"))
            .collect();
        for l in &config.server.listen {
            if let Some((ip, port)) = l.rsplit_once(':')
                && ip != "0.0.0.0"
                && !ip.starts_with('[')
                && wildcard_ports.contains(&port)
            {
                self.warnings.push(format!(
                    "listeners 0.0.0.0:{port} and {l} overlap; http.sys shares the port, a \
                     Linux socket cannot: keep one (or pass --listen)"
                ));
            }
        }
        // IIS serves a binding without a host name to every name on its address; the closest
        // certgate equivalent is the site used when no other matches.
        if config.server.default_site.is_none() {
            config.server.default_site = sites
                .iter()
                .find(|s| {
                    s.bindings.iter().any(|b| {
                        b.protocol.eq_ignore_ascii_case("https")
                            && b.information
                                .rsplit_once(':')
                                .is_some_and(|(_, h)| h.trim().is_empty())
                    })
                })
                .map(|s| s.name.clone());
        }
    }

    fn finish_passwords(&mut self) {
        if !self.encrypted.is_empty() {
            let list: Vec<String> = self
                .encrypted
                .iter()
                .map(|(what, env)| format!("{env} <- {what}"))
                .collect();
            self.warnings.push(format!(
                "{} mapping password(s) are encrypted with the IIS host's machine key \
                 ([enc:...:enc]) and cannot be decrypted here; set these environment variables \
                 before starting certgate:\n{}",
                list.len(),
                list.join("\n")
            ));
        }
        if !self.plain.is_empty() {
            let list: Vec<String> = self
                .plain
                .iter()
                .map(|(what, env)| format!("{env} <- {what}"))
                .collect();
            self.warnings.push(format!(
                "{} mapping password(s) are stored in plain text in the XML; they were not \
                 copied into the TOML: set these environment variables instead (and remove \
                 the passwords from the IIS configuration):\n{}",
                list.len(),
                list.join("\n")
            ));
        }
    }
}

#[cfg(test)]
mod tests;
