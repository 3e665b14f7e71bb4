//! Identity, forwarding and hop-by-hop headers.
//!
//! Identity headers are strip-then-set on every request: whatever a client sends under an
//! identity name (in any case, with `_` for `-`, since some backends fold the two) is removed
//! before certgate adds its own, authenticated or not. Values are computed once per connection.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::identity::CertFacts;
use serde::{Deserialize, Serialize};

/// Default identity header names.
pub const DEFAULT_NAMES: [(&str, &str); 8] = [
    ("remote_user", "X-Remote-User"),
    ("subject", "X-Client-Cert-Subject"),
    ("issuer", "X-Client-Cert-Issuer"),
    ("serial", "X-Client-Cert-Serial"),
    ("thumbprint", "X-Client-Cert-Thumbprint"),
    ("arr_client_cert", "X-ARR-ClientCert"),
    ("client_cert", "Client-Cert"),
    ("remote_groups", "X-Remote-Groups"),
];

/// The configured identity header names, validated.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    remote_user: Option<HeaderName>,
    subject: Option<HeaderName>,
    issuer: Option<HeaderName>,
    serial: Option<HeaderName>,
    thumbprint: Option<HeaderName>,
    arr_client_cert: Option<HeaderName>,
    client_cert: Option<HeaderName>,
    remote_groups: Option<HeaderName>,
    /// Every configured and default name, lowercase with `-`, for stripping.
    strip: Vec<String>,
}

/// Per-connection identity header values.
pub type HeaderSet = Vec<(HeaderName, HeaderValue)>;

impl IdentityHeaders {
    /// Validates `[headers]`; errors are `(key, reason)` pairs.
    pub fn from_raw(raw: &RawHeaders) -> Result<Self, Vec<(String, String)>> {
        let configured = [
            ("remote_user", &raw.remote_user),
            ("subject", &raw.subject),
            ("issuer", &raw.issuer),
            ("serial", &raw.serial),
            ("thumbprint", &raw.thumbprint),
            ("arr_client_cert", &raw.arr_client_cert),
            ("client_cert", &raw.client_cert),
            ("remote_groups", &raw.remote_groups),
        ];
        let mut errors = Vec::new();
        let mut names: Vec<Option<HeaderName>> = Vec::with_capacity(DEFAULT_NAMES.len());
        let mut strip: Vec<String> = DEFAULT_NAMES.iter().map(|(_, n)| fold(n)).collect();
        for ((key, value), (_, default)) in configured.iter().zip(DEFAULT_NAMES) {
            let text = value.as_deref().unwrap_or(default);
            if text.is_empty() {
                names.push(None);
                continue;
            }
            match HeaderName::from_bytes(text.as_bytes()) {
                Ok(name) if !is_reserved(&name) => {
                    strip.push(fold(text));
                    names.push(Some(name));
                }
                Ok(_) => {
                    errors.push((
                        format!("headers.{key}"),
                        format!("`{text}` is a standard HTTP header and cannot carry identity"),
                    ));
                    names.push(None);
                }
                Err(_) => {
                    errors.push((
                        format!("headers.{key}"),
                        format!("`{text}` is not a valid HTTP header name"),
                    ));
                    names.push(None);
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        strip.sort();
        strip.dedup();
        let mut it = names.into_iter();
        let mut next = || it.next().flatten();
        Ok(Self {
            remote_user: next(),
            subject: next(),
            issuer: next(),
            serial: next(),
            thumbprint: next(),
            arr_client_cert: next(),
            client_cert: next(),
            remote_groups: next(),
            strip,
        })
    }

    /// Removes every incoming header that could be mistaken for an identity header.
    pub fn strip(&self, headers: &mut HeaderMap) -> usize {
        remove_where(headers, |name| {
            let n = name.as_str();
            self.strip.iter().any(|s| folded_eq(n, s))
        })
    }

    /// The certificate headers for a validated certificate (no user).
    pub fn certificate_values(&self, facts: &CertFacts) -> HeaderSet {
        let mut set = HeaderSet::with_capacity(6);
        let b64 = facts.base64_der();
        let mut push = |name: &Option<HeaderName>, value: String| {
            if let Some(name) = name
                && let Ok(v) = HeaderValue::from_str(&header_safe(&value))
            {
                set.push((name.clone(), v));
            }
        };
        push(&self.subject, facts.subject.to_display_string());
        push(&self.issuer, facts.issuer.to_display_string());
        push(&self.serial, facts.serial_hex());
        push(&self.thumbprint, facts.thumbprint());
        push(&self.client_cert, format!(":{b64}:"));
        push(&self.arr_client_cert, b64);
        set
    }

    /// The groups header: DNs separated by `;`, each percent-encoded so a `;` or `%` inside a
    /// DN cannot be mistaken for a separator.
    pub fn groups_value(&self, groups: &[String]) -> Option<(HeaderName, HeaderValue)> {
        let name = self.remote_groups.clone()?;
        let joined = groups
            .iter()
            .map(|g| utf8_percent_encode(g, GROUP_UNSAFE).to_string())
            .collect::<Vec<_>>()
            .join(";");
        HeaderValue::from_str(&joined).ok().map(|v| (name, v))
    }

    /// The user header.
    pub fn user_value(&self, user: &str) -> Option<(HeaderName, HeaderValue)> {
        let name = self.remote_user.clone()?;
        HeaderValue::from_str(&header_safe(user))
            .ok()
            .map(|v| (name, v))
    }
}

/// Standard headers that must never be repurposed for identity.
fn is_reserved(name: &HeaderName) -> bool {
    [
        header::HOST,
        header::AUTHORIZATION,
        header::COOKIE,
        header::CONTENT_LENGTH,
        header::CONTENT_TYPE,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
        header::UPGRADE,
    ]
    .contains(name)
}

fn fold(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// `a` (already lowercase, from `HeaderName`) equals folded `b`, treating `_` as `-`.
fn folded_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (x == b'_' && y == b'-'))
}

/// Bytes a header value never carries literally: controls, and `%` itself so the encoding is
/// unambiguous. Non-ASCII bytes are always encoded by `percent_encoding`.
const HEADER_UNSAFE: &AsciiSet = &CONTROLS.add(b'%');

/// [`HEADER_UNSAFE`] plus `;`, the separator of the groups header.
const GROUP_UNSAFE: &AsciiSet = &HEADER_UNSAFE.add(b';');

/// Percent-encodes what HTTP header values cannot carry (non-ASCII, controls) and `%` itself,
/// so UTF-8 names survive and a backend can decode them unambiguously.
pub fn header_safe(value: &str) -> String {
    utf8_percent_encode(value, HEADER_UNSAFE).to_string()
}

/// Removes every header whose name `doomed` picks, in one pass over the names present.
///
/// Requests usually carry none of the names a proxy removes, and `HeaderMap::remove` of an
/// absent name still hashes and probes: scanning the handful of names present is cheaper
/// than probing for each unwanted one.
pub fn remove_where(headers: &mut HeaderMap, mut doomed: impl FnMut(&HeaderName) -> bool) -> usize {
    let names: Vec<HeaderName> = headers.keys().filter(|n| doomed(n)).cloned().collect();
    for name in &names {
        headers.remove(name);
    }
    names.len()
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus those the `Connection` header names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // `Connection: keep-alive` / `close` / `upgrade` name nothing beyond the fixed list
    // (almost every backend response says one of them); only other tokens are parsed.
    let listed: Vec<HeaderName> = connection_tokens(headers)
        .filter(|t| {
            !["keep-alive", "close", "upgrade"]
                .iter()
                .any(|fixed| t.eq_ignore_ascii_case(fixed))
        })
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    remove_where(headers, |name| {
        is_hop_by_hop(name, keep_upgrade) || listed.contains(name)
    });
}

/// The comma-separated tokens of every `Connection` header, trimmed.
pub fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

fn is_hop_by_hop(name: &HeaderName, keep_upgrade: bool) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::PROXY_AUTHORIZATION
        || name == header::PROXY_AUTHENTICATE
        || (name == header::UPGRADE && !keep_upgrade)
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// `[headers]`: identity header names. An empty string stops that header from being sent; every
/// configured name and every default name is still stripped from incoming requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    /// Mapped user name. Default `X-Remote-User`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_user: Option<String>,
    /// Subject DN. Default `X-Client-Cert-Subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Issuer DN. Default `X-Client-Cert-Issuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Serial number, uppercase hex. Default `X-Client-Cert-Serial`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// SHA-1 thumbprint, uppercase hex. Default `X-Client-Cert-Thumbprint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbprint: Option<String>,
    /// Base64 DER, as IIS ARR forwards it. Default `X-ARR-ClientCert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arr_client_cert: Option<String>,
    /// RFC 9440 byte sequence. Default `Client-Cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// Directory groups of the user (`;`-separated DNs). Default `X-Remote-Groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_groups: Option<String>,
}

impl RawHeaders {
    pub(crate) fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strips_every_spelling_of_identity_headers() {
        let names = IdentityHeaders::from_raw(&RawHeaders {
            remote_user: Some("X-User".into()),
            ..RawHeaders::default()
        })
        .unwrap();
        let mut h = HeaderMap::new();
        for n in [
            "x-remote-user",
            "X_Remote_User",
            "x-user",
            "x_user",
            "client-cert",
            "x-arr-clientcert",
            "X-ARR_CLIENTCERT",
            "x-client-cert-thumbprint",
        ] {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                "forged".parse().unwrap(),
            );
        }
        h.insert("accept", "*/*".parse().unwrap());
        names.strip(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn rejects_bad_and_reserved_names() {
        let err = IdentityHeaders::from_raw(&RawHeaders {
            subject: Some("bad header".into()),
            issuer: Some("Authorization".into()),
            ..RawHeaders::default()
        })
        .unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].0, "headers.subject");
        assert_eq!(err[1].0, "headers.issuer");
    }

    #[test]
    fn encodes_unsafe_values() {
        assert_eq!(header_safe("EXAMPLE\\jürgen"), "EXAMPLE\\j%C3%BCrgen");
        assert_eq!(header_safe("50%\r\n"), "50%25%0D%0A");
    }

    #[test]
    fn removes_hop_by_hop_and_connection_listed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            "keep-alive, x-secret, upgrade".parse().unwrap(),
        );
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        h.insert(header::ACCEPT, "*/*".parse().unwrap());
        let mut upgrade = h.clone();
        remove_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        remove_hop_by_hop(&mut upgrade, true);
        assert!(upgrade.contains_key(header::UPGRADE));
        assert!(!upgrade.contains_key("x-secret"));
    }
}
