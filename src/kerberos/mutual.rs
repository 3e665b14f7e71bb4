//! Mutual authentication: the backend proves it holds the SPN's key.
//!
//! certgate asks for mutual authentication in every AP-REQ, so an acceptor that took the token
//! answers with its AP-REP (SPNEGO-wrapped) in `WWW-Authenticate: Negotiate <token>` on the
//! response (RFC 4559 §5; IIS and Apache mod_auth_gssapi both do). Completing the client
//! context with that token verifies it. RFC 4559 lets a server leave the token out ("it may not
//! always be possible to mutually authenticate the server"), so:
//!
//! - a token that is sent is always verified; one that fails verification means the response
//!   did not come from the holder of the SPN's key, and it is not passed on (502);
//! - a response without a token is passed on unless the scope sets `require_mutual_auth`
//!   (off by default: a backend that ignores `Authorization` on some paths, as IIS does where
//!   anonymous access is on, answers without one);
//! - a 401 is the backend refusing the AP-REQ: there is nothing to verify, and it is passed on
//!   as it is (certgate never retries as someone else).
//!
//! The Negotiate challenge of a verified (or tokenless) response is the exchange between
//! certgate and the backend, so it is removed before the response goes to the client.

use base64::Engine;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::gss::Pending;

/// The `Authorization` value for one backend request, and the context that checks the reply.
#[derive(Debug)]
pub struct Negotiation {
    /// `Negotiate <token>`.
    pub header: HeaderValue,
    pub(super) pending: Pending,
}

/// A response that may be passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The backend's token completed the context.
    Mutual = 0,
    /// The backend sent no token (allowed: `require_mutual_auth` is off).
    NoToken,
    /// A 401: the backend refused the token; nothing to verify.
    Refused,
}

impl Verified {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mutual => "verified",
            Self::NoToken => "no_token",
            Self::Refused => "backend_401",
        }
    }
}

/// Why a response is not passed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutualFailure {
    /// No token, and the scope requires one.
    #[error("the backend sent no Negotiate token and require_mutual_auth is on")]
    Missing,
    /// More than one Negotiate token.
    #[error("the backend sent {0} Negotiate tokens")]
    Several(usize),
    /// Not base64.
    #[error("the backend's Negotiate token is not base64")]
    NotBase64,
    /// GSS-API refused it.
    #[error("the backend's Negotiate token failed verification: {0}")]
    Rejected(String),
}

/// The token of each `Negotiate <token>` challenge in `headers` (a bare `Negotiate` has none).
fn tokens(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|challenge| {
            let challenge = challenge.trim();
            let (scheme, rest) = challenge.split_once(' ').unwrap_or((challenge, ""));
            let token = rest.trim();
            (scheme.eq_ignore_ascii_case("Negotiate") && !token.is_empty()).then_some(token)
        })
        .collect()
}

/// What to verify in a response: `Ok(None)` when nothing, else the decoded token.
pub fn reply_token(
    status: StatusCode,
    headers: &HeaderMap,
    required: bool,
) -> Result<Option<Vec<u8>>, MutualFailure> {
    if status == StatusCode::UNAUTHORIZED {
        return Ok(None);
    }
    match tokens(headers).as_slice() {
        [] if required => Err(MutualFailure::Missing),
        [] => Ok(None),
        [token] => base64::engine::general_purpose::STANDARD
            .decode(token)
            .map(Some)
            .map_err(|_| MutualFailure::NotBase64),
        several => Err(MutualFailure::Several(several.len())),
    }
}

/// A `401` that asks for a (new) Negotiate exchange: the backend refused the request's
/// credentials, or had none on the connection.
pub fn asks_to_negotiate(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UNAUTHORIZED
        && headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|challenge| {
                let scheme = challenge.trim().split(' ').next().unwrap_or_default();
                scheme.eq_ignore_ascii_case("Negotiate")
            })
}

/// The `Persistent-Auth` header ([MS-N2HT] 2.2.1): IIS says with the response that completed
/// authentication whether the connection stays authenticated (`authPersistNonNTLM`).
const PERSISTENT_AUTH: &str = "persistent-auth";

/// Whether the backend lets the connection that carried this (authenticated) response stay
/// logged on. Only an explicit `Persistent-Auth: false` says no ([MS-N2HT] 3.2.5.1); it matters
/// for a backend that also allows anonymous access, where a token-less request on a connection
/// it did not keep would be served as nobody instead of refused.
pub fn keeps_logon(headers: &HeaderMap) -> bool {
    !headers.get_all(PERSISTENT_AUTH).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("false"))
    })
}

/// Removes the Negotiate challenges and the `Persistent-Auth` hint (certgate's exchange with
/// the backend, not the client's) from a response that is passed on; other challenges stay.
pub fn strip(headers: &mut HeaderMap) {
    headers.remove(PERSISTENT_AUTH);
    let kept: Vec<HeaderValue> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter(|v| {
            let text = v.to_str().unwrap_or_default().trim_start();
            let scheme = text.split([' ', ',']).next().unwrap_or_default();
            !scheme.eq_ignore_ascii_case("Negotiate")
        })
        .cloned()
        .collect();
    headers.remove(WWW_AUTHENTICATE);
    for v in kept {
        headers.append(WWW_AUTHENTICATE, v);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(WWW_AUTHENTICATE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_reply_token_is_found_decoded_or_refused() {
        let ok = StatusCode::OK;
        assert_eq!(
            reply_token(ok, &headers(&["Negotiate oQcwBaADCgEA"]), false).unwrap(),
            Some(vec![0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 0x00])
        );
        assert_eq!(
            reply_token(ok, &headers(&["Basic realm=\"x\", negotiate AAAA"]), true).unwrap(),
            Some(vec![0, 0, 0])
        );
        assert_eq!(reply_token(ok, &headers(&["Negotiate"]), false), Ok(None));
        assert_eq!(
            reply_token(ok, &headers(&["Negotiate"]), true),
            Err(MutualFailure::Missing)
        );
        assert_eq!(
            reply_token(ok, &headers(&["Negotiate !!"]), false),
            Err(MutualFailure::NotBase64)
        );
        assert_eq!(
            reply_token(ok, &headers(&["Negotiate AAAA", "Negotiate BBBB"]), false),
            Err(MutualFailure::Several(2))
        );
        // A 401 is the backend's refusal, passed on unverified even when required.
        let unauthorized = StatusCode::UNAUTHORIZED;
        assert_eq!(reply_token(unauthorized, &headers(&[]), true), Ok(None));
    }

    #[test]
    fn only_a_negotiate_401_asks_for_a_new_exchange() {
        let unauthorized = StatusCode::UNAUTHORIZED;
        assert!(asks_to_negotiate(unauthorized, &headers(&["Negotiate"])));
        assert!(asks_to_negotiate(
            unauthorized,
            &headers(&["Basic realm=\"x\", NEGOTIATE oQcwBaADCgEA"])
        ));
        assert!(!asks_to_negotiate(
            unauthorized,
            &headers(&["Basic realm=\"x\""])
        ));
        assert!(!asks_to_negotiate(unauthorized, &headers(&[])));
        assert!(!asks_to_negotiate(StatusCode::OK, &headers(&["Negotiate"])));
    }

    #[test]
    fn only_an_explicit_persistent_auth_false_says_the_logon_is_not_kept() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(PERSISTENT_AUTH, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(keeps_logon(&HeaderMap::new()));
        assert!(keeps_logon(&with("true")));
        assert!(keeps_logon(&with("maybe")));
        assert!(!keeps_logon(&with("false")));
        assert!(!keeps_logon(&with(" False ")));
    }

    #[test]
    fn only_negotiate_challenges_are_stripped() {
        let mut h = headers(&["Negotiate AAAA", "Basic realm=\"x\"", "negotiate"]);
        h.insert(PERSISTENT_AUTH, HeaderValue::from_static("true"));
        strip(&mut h);
        assert!(h.get(PERSISTENT_AUTH).is_none());
        let left: Vec<&str> = h
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(left, ["Basic realm=\"x\""]);
    }
}
