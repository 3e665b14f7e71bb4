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
mod emit;
mod extras;
mod inherit;
pub mod netsh;
pub mod netsh_apply;
pub mod standalone;
pub mod table;
mod xml;

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::CertificateDer;

use crate::config::raw::{
    RawConfig, RawIisMapping, RawLocation, RawManyToOne, RawOneToOne, RawRule, RawSite,
};
use crate::identity::CertFacts;
use emit::Emit;
pub use extras::SiteExtras;
use inherit::{Effective, MapperState, check_locks, is_prefix, resolve};
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
    /// Per imported site (same order as `config.sites`): id, `<logFile>` and `<httpErrors>`.
    pub site_extras: Vec<SiteExtras>,
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
    /// A `netsh http show sslcert` dump that cannot be read.
    #[error(transparent)]
    Netsh(#[from] netsh::NetshError),
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
    let mut site_extras = Vec::with_capacity(selected.len());
    for site in &selected {
        let mut raw = ctx.site(site, &fragments)?;
        extras::location_http_errors(
            site,
            &mut raw,
            &fragments,
            &mut ctx.warnings,
            &mut ctx.untranslated,
        );
        config.sites.push(raw);
        site_extras.push(extras::site_extras(
            site,
            parsed.log_defaults.as_ref(),
            &fragments,
            &mut ctx.warnings,
            &mut ctx.untranslated,
        ));
    }
    ctx.listeners(&selected, &mut config);
    ctx.finish_passwords();
    Ok(Imported {
        config,
        warnings: dedup(ctx.warnings),
        untranslated: dedup(ctx.untranslated),
        site_extras,
    })
}

/// Renders an import as TOML, with the warnings and untranslated items as comments on top so
/// they travel with the file.
pub fn to_toml(imported: &Imported) -> Result<String, ImportError> {
    let body = toml::to_string_pretty(&imported.config).map_err(ImportError::Toml)?;
    let body = extras::render(&body, &imported.site_extras);
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
                push_comment_text(&mut out, line);
                out.push('\n');
            }
        }
    }
    out.push('\n');
    out.push_str(&body);
    Ok(out)
}

/// TOML comments may not hold control characters other than tab; warnings quote attribute
/// values from the XML as written, so anything else is shown escaped (`\u{1}`).
fn push_comment_text(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
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

#[cfg(test)]
mod tests;
