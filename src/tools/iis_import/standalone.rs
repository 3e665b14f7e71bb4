//! Inputs that are not a whole applicationHost.config: a site's `web.config` on its own
//! (`--site-name`), or a bare fragment as IIS's documentation prints it (`<location
//! path="Default Web Site">`, `<system.webServer>`, `<security>`, or the
//! `<iisClientCertificateMappingAuthentication>` element itself).
//!
//! Both are turned into what [`super::import`] already understands, so they are merged and
//! translated by the same code as a full applicationHost.config: a minimal applicationHost
//! naming the site(s) (with no bindings: IIS keeps those in applicationHost.config only), plus
//! the file as that site's web.config, or the fragment wrapped back into its place. Line numbers
//! in messages stay those of the file (wrappers are added on its first line).

use roxmltree::Document;

use super::{ImportError, WebConfigInput};

/// What to import, once the input's kind is known.
#[derive(Debug)]
pub struct Prepared {
    /// applicationHost.config text (the input itself, or a synthetic one).
    pub app_host: String,
    /// Name of `app_host` in messages.
    pub app_host_file: String,
    /// The input as a web.config, when it is one.
    pub web_configs: Vec<WebConfigInput>,
    /// Sites to import (empty: the importer's default, every https site).
    pub sites: Vec<String>,
    /// What the person should know about this kind of input.
    pub notes: Vec<String>,
}

/// The elements a fragment may start with, and the elements that put it back in place under
/// `<system.webServer>`.
const WRAPPERS: &[(&str, &[&str])] = &[
    ("system.webServer", &[]),
    ("security", &["system.webServer"]),
    ("access", &["system.webServer", "security"]),
    ("authentication", &["system.webServer", "security"]),
    (
        "iisClientCertificateMappingAuthentication",
        &["system.webServer", "security", "authentication"],
    ),
    (
        "anonymousAuthentication",
        &["system.webServer", "security", "authentication"],
    ),
];

/// Decides what `text` (read from `file`) is and prepares it for import. `site_name` is
/// `--site-name`: the site a web.config or a site-relative fragment belongs to.
pub fn prepare(text: &str, file: &str, site_name: Option<&str>) -> Result<Prepared, ImportError> {
    let blanked = blank_declaration(text);
    let parsed = Document::parse(&blanked).ok().map(|doc| {
        let root = doc.root_element();
        let has_sites = root
            .children()
            .filter(|n| n.has_tag_name("system.applicationHost"))
            .flat_map(|n| n.children())
            .any(|n| n.has_tag_name("sites"));
        (root.tag_name().name().to_owned(), has_sites)
    });
    match (parsed, site_name) {
        (Some((root, true)), None) if root == "configuration" => Ok(Prepared {
            app_host: text.to_owned(),
            app_host_file: file.to_owned(),
            web_configs: Vec::new(),
            sites: Vec::new(),
            notes: Vec::new(),
        }),
        (Some((root, true)), Some(_)) if root == "configuration" => Err(invalid(
            file,
            "this is an applicationHost.config (it has <system.applicationHost><sites>); \
             --site-name is for a site's web.config or a fragment: choose sites with --site",
        )),
        (Some((root, false)), Some(site)) if root == "configuration" => {
            Ok(web_config(text, file, site, "web.config"))
        }
        (Some((root, false)), None) if root == "configuration" => Err(invalid(
            file,
            "this file names no sites (no <system.applicationHost><sites>): it is a web.config; \
             name its site with --site-name",
        )),
        _ => fragment(text, &blanked, file, site_name),
    }
}

/// A fragment: `<location>` blocks as applicationHost.config holds them, or a
/// `<system.webServer>` part of one site's configuration.
fn fragment(
    text: &str,
    blanked: &str,
    file: &str,
    site_name: Option<&str>,
) -> Result<Prepared, ImportError> {
    let wrapped = format!("<configuration>{blanked}</configuration>");
    let doc = match Document::parse(&wrapped) {
        Ok(doc) => doc,
        // Report the file's own error, at the file's own position.
        Err(_) => {
            return Err(match Document::parse(text) {
                Err(e) => ImportError::Xml {
                    file: file.to_owned(),
                    line: e.pos().row,
                    column: e.pos().col,
                    message: e.to_string(),
                },
                Ok(_) => invalid(file, "not an IIS configuration file or fragment"),
            });
        }
    };
    let tops: Vec<&str> = doc
        .root_element()
        .children()
        .filter(roxmltree::Node::is_element)
        .map(|n| n.tag_name().name())
        .collect();
    let Some(first) = tops.first().copied() else {
        return Err(invalid(file, "no XML element found"));
    };
    if first == "location" && tops.iter().all(|t| *t == "location") {
        let mut sites: Vec<String> = Vec::new();
        for loc in doc
            .root_element()
            .children()
            .filter(|n| n.has_tag_name("location"))
        {
            let path = super::xml::split_path(loc.attribute("path").unwrap_or_default());
            if let Some(site) = path.first()
                && !sites.iter().any(|s| s.eq_ignore_ascii_case(site))
            {
                sites.push(site.clone());
            }
        }
        let named_site = |s: &str| sites.iter().any(|n| n.eq_ignore_ascii_case(s));
        match site_name {
            // The documentation's form: paths start with the site's name.
            Some(site) if named_site(site) => {
                return Ok(app_host_fragment(blanked, file, vec![site.to_owned()]));
            }
            None if !sites.is_empty() => return Ok(app_host_fragment(blanked, file, sites)),
            // Paths relative to the site, as in a web.config.
            Some(site) => return Ok(web_config(&wrapped, file, site, "fragment")),
            None => {
                return Err(invalid(
                    file,
                    "the <location> fragment names no site (path=\"\"): name it with --site-name",
                ));
            }
        }
    }
    let Some((_, wrappers)) = WRAPPERS.iter().find(|(name, _)| *name == first) else {
        return Err(invalid(
            file,
            &format!(
                "<{first}> is not a fragment import-iis understands (expected <configuration>, \
                 <location>, <system.webServer>, <security>, <authentication> or \
                 <iisClientCertificateMappingAuthentication>)"
            ),
        ));
    };
    if tops.iter().any(|t| *t != first) {
        return Err(invalid(
            file,
            "a fragment must hold elements of one kind (wrap mixed sections in <system.webServer>)",
        ));
    }
    let Some(site) = site_name else {
        return Err(invalid(
            file,
            &format!("a <{first}> fragment does not say which site it is for: use --site-name"),
        ));
    };
    let open: String = wrappers.iter().map(|w| format!("<{w}>")).collect();
    let close: String = wrappers.iter().rev().map(|w| format!("</{w}>")).collect();
    let content = format!("<configuration>{open}{blanked}{close}</configuration>");
    Ok(web_config(&content, file, site, "fragment"))
}

/// The sections a site's web.config may set once applicationHost.config unlocks them.
const UNLOCKED: &str = "<configSections><sectionGroup name=\"system.webServer\">\
    <sectionGroup name=\"security\"><section name=\"access\" overrideModeDefault=\"Allow\"/>\
    <sectionGroup name=\"authentication\">\
    <section name=\"anonymousAuthentication\" overrideModeDefault=\"Allow\"/>\
    <section name=\"iisClientCertificateMappingAuthentication\" overrideModeDefault=\"Allow\"/>\
    </sectionGroup></sectionGroup></sectionGroup></configSections>";

/// The input as the web.config at the root of `site`. Whether the (absent)
/// applicationHost.config locks its sections cannot be known, so they are taken as unlocked
/// and the note says so.
fn web_config(content: &str, file: &str, site: &str, what: &str) -> Prepared {
    Prepared {
        app_host: synthetic_app_host(&[site.to_owned()], UNLOCKED),
        app_host_file: "(no applicationHost.config)".to_owned(),
        web_configs: vec![WebConfigInput {
            file: file.to_owned(),
            content: content.to_owned(),
            site_path: site.to_owned(),
        }],
        sites: vec![site.to_owned()],
        notes: vec![
            no_bindings_note(file, what),
            format!(
                "{file}: without applicationHost.config, its section locks are not checked (IIS \
                 answers 500.19 when a web.config sets a section the server locks)"
            ),
        ],
    }
}

/// `<location>` blocks put back into an applicationHost.config naming their sites.
fn app_host_fragment(blanked: &str, file: &str, sites: Vec<String>) -> Prepared {
    Prepared {
        app_host: synthetic_app_host(&sites, blanked),
        app_host_file: file.to_owned(),
        web_configs: Vec::new(),
        sites,
        notes: vec![no_bindings_note(file, "fragment")],
    }
}

fn no_bindings_note(file: &str, what: &str) -> String {
    format!(
        "{file}: imported as a {what} without applicationHost.config: the site's bindings \
         (host names, IP and port) are not known; give --listen and set host_names"
    )
}

/// An applicationHost.config with `sites` (no bindings) and then `body`, all on the first line
/// so that `body`'s line numbers are unchanged.
fn synthetic_app_host(sites: &[String], body: &str) -> String {
    // configSections must come first.
    let (sections, body) = match body.strip_prefix("<configSections>") {
        Some(_) => (body, ""),
        None => ("", body),
    };
    let sites: String = sites
        .iter()
        .map(|s| format!("<site name=\"{}\"><bindings/></site>", escape(s)))
        .collect();
    format!(
        "<configuration>{sections}<system.applicationHost><sites>{sites}</sites>\
         </system.applicationHost>{body}</configuration>"
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `<?xml ...?>` replaced by spaces (line breaks kept), so the text can be wrapped in another
/// element without moving anything.
fn blank_declaration(text: &str) -> String {
    let trimmed = text.trim_start_matches('\u{feff}');
    let start = trimmed.len() - trimmed.trim_start().len();
    let rest = &trimmed[start..];
    if rest.starts_with("<?xml")
        && let Some(end) = rest.find("?>")
    {
        let decl: String = rest[..end + 2]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        return format!("{}{decl}{}", &trimmed[..start], &rest[end + 2..]);
    }
    trimmed.to_owned()
}

fn invalid(file: &str, message: &str) -> ImportError {
    ImportError::InvalidConfig {
        file: file.to_owned(),
        line: 1,
        column: 1,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_declaration_is_blanked_without_moving_lines() {
        let text = "<?xml version=\"1.0\"?>\n<location path=\"S\"/>\n";
        let out = blank_declaration(text);
        assert_eq!(out.lines().count(), text.lines().count());
        assert!(out.lines().nth(1).unwrap().starts_with("<location"));
        assert!(!out.contains("<?xml"));
    }

    #[test]
    fn kinds_are_recognised() {
        let app_host = "<configuration><system.applicationHost><sites/></system.applicationHost></configuration>";
        let p = prepare(app_host, "a.config", None).unwrap();
        assert!(p.web_configs.is_empty() && p.sites.is_empty());
        assert!(prepare(app_host, "a.config", Some("S")).is_err());

        let web = "<configuration><system.webServer/></configuration>";
        let p = prepare(web, "web.config", Some("Site & Co")).unwrap();
        assert_eq!(p.sites, vec!["Site & Co"]);
        assert_eq!(p.web_configs[0].site_path, "Site & Co");
        assert!(p.app_host.contains("name=\"Site &amp; Co\""));
        let err = prepare(web, "web.config", None).unwrap_err().to_string();
        assert!(err.contains("--site-name"), "{err}");

        let loc = "<location path=\"Default Web Site/app\"><system.webServer/></location>";
        let p = prepare(loc, "doc.xml", None).unwrap();
        assert_eq!(p.sites, vec!["Default Web Site"]);
        assert!(p.web_configs.is_empty());
        let p = prepare(loc, "doc.xml", Some("Other")).unwrap();
        assert_eq!(p.web_configs[0].site_path, "Other");

        let section = "<iisClientCertificateMappingAuthentication enabled=\"true\"/>";
        let p = prepare(section, "doc.xml", Some("S")).unwrap();
        assert!(
            p.web_configs[0].content.starts_with(
                "<configuration><system.webServer><security><authentication><iisClient"
            )
        );
        assert!(prepare(section, "doc.xml", None).is_err());
        assert!(prepare("<handlers/>", "doc.xml", Some("S")).is_err());
        let err = prepare("<location path=\"S\">", "doc.xml", None).unwrap_err();
        assert!(matches!(err, ImportError::Xml { line: 1, .. }), "{err}");
    }
}
