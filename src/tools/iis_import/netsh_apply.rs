//! What a `netsh http show sslcert` dump ([`super::netsh`]) means for the imported sites: each
//! site's https bindings are looked up the way http.sys looks them up, the binding's revocation
//! settings become `[site.revocation]`, and settings certgate handles differently (or not at
//! all) become warnings.
//!
//! Without applicationHost.config, [`synthetic_app_host`] turns the dump's bindings into sites,
//! so the rest of the import (listeners, host names, placeholders) is the ordinary one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::netsh::{Endpoint, IIS_APP_ID, SslCertBinding};
use super::standalone::Prepared;
use super::{ImportOptions, Imported};
use crate::revocation::config::RawSiteRevocation;

/// http.sys's CRL retrieval timeout when `URL Retrieval Timeout` is 0 (the CAPI default).
const DEFAULT_URL_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest `url_retrieval_timeout` certgate accepts.
const MAX_URL_TIMEOUT: Duration = Duration::from_secs(300);

/// The http.sys key of an IIS https binding (`bindingInformation` `IP:port:host`, `sslFlags`
/// bit 1 SNI, bit 2 Central Certificate Store).
pub(super) fn iis_endpoint(information: &str, ssl_flags: Option<&str>) -> Option<Endpoint> {
    let (addr, host) = information.rsplit_once(':')?;
    let (ip, port) = addr.rsplit_once(':')?;
    let port = port.trim().parse::<u16>().ok()?;
    let flags = ssl_flags.map_or(Some(0), |f| f.trim().parse::<u32>().ok())?;
    let host = host.trim();
    if flags & 2 != 0 {
        return Some(Endpoint::Ccs { port });
    }
    if flags & 1 != 0 && !host.is_empty() {
        return Some(Endpoint::HostnamePort {
            host: host.to_ascii_lowercase(),
            port,
        });
    }
    let ip = match ip.trim() {
        "*" | "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        other => other
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?,
    };
    Some(Endpoint::IpPort(SocketAddr::new(ip, port)))
}

/// The binding http.sys uses for `ep`: the exact key, or for an address binding the wildcard
/// address of its family on the same port.
fn lookup(ep: &Endpoint, bindings: &[SslCertBinding]) -> Option<usize> {
    if let Some(i) = bindings.iter().position(|b| b.endpoint == *ep) {
        return Some(i);
    }
    let Endpoint::IpPort(addr) = ep else {
        return None;
    };
    let any = match addr.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let wildcard = Endpoint::IpPort(SocketAddr::new(any, addr.port()));
    bindings.iter().position(|b| b.endpoint == wildcard)
}

/// `[site.revocation]` for a binding, in netsh's units: freshness in seconds, retrieval timeout
/// in milliseconds (0: the Windows default of 15 s).
pub(super) fn revocation(b: &SslCertBinding, warnings: &mut Vec<String>) -> RawSiteRevocation {
    let freshness = match b.use_freshness_time {
        // Newer Windows prints the CertCheckMode bit; without it the time is not used.
        Some(false) => 0,
        _ => b.freshness_time_secs,
    };
    let timeout = match b.url_retrieval_timeout_ms {
        0 => DEFAULT_URL_TIMEOUT,
        ms => Duration::from_millis(u64::from(ms)),
    };
    if timeout > MAX_URL_TIMEOUT {
        warnings.push(format!(
            "{}: URL Retrieval Timeout {} ms is more than certgate allows; \
             url_retrieval_timeout = \"300s\"",
            b.endpoint, b.url_retrieval_timeout_ms
        ));
    }
    RawSiteRevocation {
        check: Some(if b.verify_revocation { "chain" } else { "none" }.to_owned()),
        cached_only: Some(b.cached_only),
        freshness_time: Some(Duration::from_secs(u64::from(freshness))),
        url_retrieval_timeout: Some(timeout.min(MAX_URL_TIMEOUT)),
        unknown_status: None,
    }
}

/// Warnings for the binding's settings that certgate handles differently, and untranslated
/// items for the ones it does not handle.
pub(super) fn notes(
    b: &SslCertBinding,
    file: &str,
    at: &str,
    opts: &ImportOptions,
    warnings: &mut Vec<String>,
    untranslated: &mut Vec<String>,
) {
    if !b.negotiate_client_certificate {
        warnings.push(format!(
            "{at}: Negotiate Client Certificate is Disabled: http.sys finishes the handshake \
             without a client certificate and asks for one by TLS renegotiation only when a \
             path's sslFlags need it. certgate asks for it in the initial handshake for the \
             whole site (optional where paths only accept it, required where every path \
             requires it; TLS 1.3 and HTTP/2 have no renegotiation), so browsers may offer \
             the certificate prompt on the first visit to any path; per-path requirements \
             still answer 403.7"
        ));
    }
    if b.ds_mapper {
        warnings.push(format!(
            "{at}: DS Mapper Usage is Enabled: http.sys maps client certificates to Active \
             Directory accounts. certgate does this with [directory] and \
             [site.directory.certificate_mapping] enabled = true (altSecurityIdentities, \
             strong forms by default; see README \"Active Directory\"), which this import \
             does not configure"
        ));
    }
    if !b.usage_check {
        warnings.push(format!(
            "{at}: Usage Check is Disabled: http.sys accepted client certificates whatever \
             their Extended Key Usage. certgate always checks it: a certificate in the chain \
             that has an Extended Key Usage extension must list Client Authentication \
             (1.3.6.1.5.5.7.3.2); one without the extension passes. Certificates issued \
             without clientAuth will get 403.16"
        ));
    }
    if b.ctl_identifier.is_some() || b.ctl_store.is_some() {
        let id = b.ctl_identifier.as_deref().unwrap_or("(null)");
        let store = b.ctl_store.as_deref().unwrap_or("(null)");
        let ca = if opts.client_ca.is_empty() {
            "list exactly those CA certificates in client_ca"
        } else {
            "make sure --client-ca lists exactly those CA certificates"
        };
        warnings.push(format!(
            "{at}: Ctl Identifier '{id}' (Ctl Store Name '{store}'): the Certificate Trust \
             List limits which issuers http.sys trusts and advertises. certgate trusts \
             exactly the site's client_ca: {ca} (export them from the CTL)"
        ));
    }
    if opts.certificate.is_none()
        && opts.pfx.is_none()
        && let Some(hash) = &b.certificate_hash
    {
        let store = b.certificate_store.as_deref().unwrap_or("My");
        // Not per binding: sites usually share one certificate.
        warnings.push(format!(
            "{file}: the server certificate {hash} is in the LocalMachine\\{store} store: \
             export it with its private key (Export-PfxCertificate -Cert \
             Cert:\\LocalMachine\\{store}\\{hash}) and import again with --pfx"
        ));
    }
    for (name, value, line) in &b.other {
        let off = ["Not Set", "Disabled", "0", "(null)", ""]
            .iter()
            .any(|v| v.eq_ignore_ascii_case(value));
        if !off {
            untranslated.push(format!(
                "{at}: '{name} : {value}' (line {line}) not translated"
            ));
        }
    }
}

/// Applies the dump to every imported site whose https bindings http.sys would look up in it,
/// and reports bindings no site uses.
pub fn apply(
    imported: &mut Imported,
    bindings: &[SslCertBinding],
    file: &str,
    opts: &ImportOptions,
) {
    let mut used = vec![false; bindings.len()];
    let warnings = &mut imported.warnings;
    let untranslated = &mut imported.untranslated;
    for (site, extras) in imported.config.sites.iter_mut().zip(&imported.site_extras) {
        let mut matched: Vec<usize> = Vec::new();
        for (info, flags) in &extras.https_bindings {
            if let Some(i) = iis_endpoint(info, flags.as_deref()).and_then(|e| lookup(&e, bindings))
                && !matched.contains(&i)
            {
                matched.push(i);
            }
        }
        let Some(&first) = matched.first() else {
            warnings.push(format!(
                "site '{}': none of its https bindings has a binding in {file}; its \
                 [site.revocation] is certgate's default (http.sys's: check the chain)",
                site.name
            ));
            continue;
        };
        let at = |i: usize| {
            format!(
                "{file}:{} ({}, site '{}')",
                bindings[i].line, bindings[i].endpoint, site.name
            )
        };
        let chosen = revocation(&bindings[first], warnings);
        for &i in &matched {
            used[i] = true;
            if i != first && revocation(&bindings[i], &mut Vec::new()) != chosen {
                warnings.push(format!(
                    "{}: its revocation settings differ from those of {}; certgate has one \
                     [site.revocation] per site and uses the latter (split the site if they \
                     must differ)",
                    at(i),
                    bindings[first].endpoint
                ));
            }
            notes(&bindings[i], file, &at(i), opts, warnings, untranslated);
        }
        site.revocation = Some(chosen);
    }
    for (b, _) in bindings.iter().zip(&used).filter(|(_, used)| !**used) {
        let owner = match b.application_id.as_deref() {
            Some(id) if !id.eq_ignore_ascii_case(IIS_APP_ID) => {
                format!(" (Application ID {id} is not IIS's: another program owns it)")
            }
            _ => String::new(),
        };
        warnings.push(format!(
            "{file}:{}: {} matches no imported site's https binding; its settings are not \
             used{owner}",
            b.line, b.endpoint
        ));
    }
}

/// The import of a dump without applicationHost.config: one site per binding IIS owns (its
/// Application ID), or per binding when IIS owns none. The others are reported by [`apply`].
pub fn prepare_alone(bindings: &[SslCertBinding], file: &str) -> Prepared {
    let iis: Vec<SslCertBinding> = bindings
        .iter()
        .filter(|b| {
            b.application_id
                .as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(IIS_APP_ID))
        })
        .cloned()
        .collect();
    Prepared {
        app_host: synthetic_app_host(if iis.is_empty() { bindings } else { &iis }),
        app_host_file: file.to_owned(),
        web_configs: Vec::new(),
        sites: Vec::new(),
        notes: vec![format!(
            "{file} was imported without applicationHost.config: each http.sys binding became \
             a site named after it, with its listener, host name and revocation settings; the \
             sites' authentication (sslFlags, anonymous access, mappings) lives in \
             applicationHost.config: import it together with --netsh for a complete \
             configuration"
        )],
    }
}

/// An applicationHost.config with one site per binding of the dump, named after the binding,
/// for an import of the dump alone.
pub fn synthetic_app_host(bindings: &[SslCertBinding]) -> String {
    let mut xml = String::from("<configuration><system.applicationHost><sites>");
    for b in bindings {
        let (name, info, flags) = match &b.endpoint {
            Endpoint::IpPort(addr) => {
                let ip = match addr.ip() {
                    ip if ip.is_unspecified() && ip.is_ipv4() => "*".to_owned(),
                    IpAddr::V6(ip) => format!("[{ip}]"),
                    IpAddr::V4(ip) => ip.to_string(),
                };
                (addr.to_string(), format!("{ip}:{}:", addr.port()), 0)
            }
            Endpoint::HostnamePort { host, port } => {
                (format!("{host}:{port}"), format!("*:{port}:{host}"), 1)
            }
            Endpoint::Ccs { port } => (
                format!("Central Certificate Store:{port}"),
                format!("*:{port}:"),
                2,
            ),
        };
        xml.push_str(&format!(
            "<site name=\"{}\"><bindings><binding protocol=\"https\" \
             bindingInformation=\"{}\" sslFlags=\"{flags}\"/></bindings></site>",
            escape(&name),
            escape(&info)
        ));
    }
    xml.push_str("</sites></system.applicationHost></configuration>");
    xml
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
#[path = "netsh_apply_tests.rs"]
mod tests;
