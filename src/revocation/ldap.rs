//! CRLs from LDAP distribution points, as AD Certificate Services publishes them:
//! `ldap:///CN=<CA>,CN=<host>,CN=CDP,CN=Public Key Services,CN=Services,CN=Configuration,<forest>
//! ?certificateRevocationList?base?objectClass=cRLDistributionPoint` (and `deltaRevocationList`
//! for the delta CRL).
//!
//! A URL without a host is read from the configured `[directory]`, with its service account,
//! TLS and failover. A URL naming a host is refused: its trust and credentials would be
//! unconfigured, and AD CS writes host-less URLs.

use std::time::Duration;

use bytes::Bytes;
use percent_encoding::percent_decode_str;

use super::fetch::{FetchError, Limits};
use crate::directory::Directory;

/// The configured directory, for host-less `ldap:///` URLs.
#[derive(Debug, Clone)]
pub struct LdapSource {
    directory: Directory,
    id: String,
}

impl LdapSource {
    /// A source over `directory`; `id` names its settings (no secret) to key the shared cache.
    pub fn new(directory: Directory, id: String) -> Self {
        Self { directory, id }
    }

    /// Identifies the directory settings (no secret), to key the shared cache.
    pub fn identity(&self) -> String {
        self.id.clone()
    }
}

/// The parts of an LDAP URL (RFC 4516) a CRL fetch needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUrl {
    /// `host[:port]`, empty for `ldap:///`.
    pub host: String,
    /// The object's DN, percent-decoded.
    pub dn: String,
    /// The attribute, with `;binary` (default `certificateRevocationList;binary`).
    pub attribute: String,
}

/// Parses `ldap://host/dn?attr?scope?filter`.
pub fn parse(url: &str) -> Option<LdapUrl> {
    let rest = url
        .strip_prefix("ldap://")
        .or_else(|| url.strip_prefix("LDAP://"))?;
    let (host, path) = rest.split_once('/')?;
    let mut parts = path.split('?');
    let dn = percent_decode_str(parts.next()?)
        .decode_utf8()
        .ok()?
        .into_owned();
    if dn.trim().is_empty() {
        return None;
    }
    let attr = parts
        .next()
        .and_then(|a| a.split(',').next())
        .filter(|a| !a.is_empty())
        .unwrap_or("certificateRevocationList");
    let attribute = if attr.to_ascii_lowercase().ends_with(";binary") {
        attr.to_owned()
    } else {
        format!("{attr};binary")
    };
    Some(LdapUrl {
        host: host.to_owned(),
        dn,
        attribute,
    })
}

/// Fetches the CRL attribute an LDAP URL names, bounded by `timeout` and `limits.max_bytes`.
pub async fn fetch(
    source: Option<&LdapSource>,
    url: &str,
    limits: &Limits,
    timeout: Duration,
) -> Result<Bytes, FetchError> {
    let fail = |reason: String| FetchError::Ldap {
        url: url.to_owned(),
        reason,
    };
    let parsed =
        parse(url).ok_or_else(|| fail("not an ldap://host/DN URL certgate reads".into()))?;
    // AD accepts the `;binary` option; Samba answers only the bare name. Ask for both.
    let bare = parsed
        .attribute
        .split(';')
        .next()
        .unwrap_or(&parsed.attribute);
    let attrs = [parsed.attribute.as_str(), bare];
    let read = async {
        if parsed.host.is_empty() {
            let source = source.ok_or_else(|| {
                fail("a host-less ldap:/// URL needs a [directory] section".into())
            })?;
            source
                .directory
                .read_attribute(&parsed.dn, &attrs)
                .await
                .map_err(|e| fail(e.to_string()))
        } else {
            Err(fail(
                "ldap:// URLs naming a host are not read (their trust and credentials would \
                 be unconfigured); AD CS publishes host-less ldap:/// URLs, read from \
                 [directory]"
                    .into(),
            ))
        }
    };
    let value = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| FetchError::Timeout {
            url: url.to_owned(),
            after: timeout,
        })??
        .ok_or_else(|| fail(format!("no {} on {}", parsed.attribute, parsed.dn)))?;
    if value.len() > limits.max_bytes {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
            limit: limits.max_bytes,
        });
    }
    Ok(Bytes::from(value))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ad_cs_urls_parse() {
        let url = "ldap:///CN=Example%20CA,CN=dc1,CN=CDP,CN=Public%20Key%20Services,CN=Services,\
                   CN=Configuration,DC=example,DC=test?certificateRevocationList?base?\
                   objectClass=cRLDistributionPoint";
        let parsed = parse(url).unwrap();
        assert_eq!(parsed.host, "");
        assert!(parsed.dn.starts_with("CN=Example CA,CN=dc1,CN=CDP"));
        assert_eq!(parsed.attribute, "certificateRevocationList;binary");
        let delta = parse("ldap://dc1:389/CN=x?deltaRevocationList;binary").unwrap();
        assert_eq!(
            (delta.host.as_str(), delta.attribute.as_str()),
            ("dc1:389", "deltaRevocationList;binary")
        );
        assert!(parse("ldap:///?x").is_none());
        assert!(parse("ldaps://dc1/CN=x").is_none());
    }
}
