//! Request-path normalisation for location matching and forwarding.
//!
//! A location such as `/public` may allow anonymous access while its siblings require a
//! certificate, so the path certgate matches must mean exactly what the backend will serve. The
//! path is decoded once, dot segments are resolved, and the backend receives that normalised
//! path re-encoded, never the client's original spelling. Matching additionally applies what a
//! Windows or Java backend would ignore (case, trailing dots and spaces, `;` parameters), and
//! anything that stays ambiguous (double encoding, control bytes, `..;`) is refused with 400.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Why a path was refused (answered with 400; IIS answers these with 400 or 404.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("the request path must start with '/'")]
    NotAbsolute,
    /// `%` not followed by two hex digits.
    #[error("malformed percent-encoding")]
    BadEscape,
    /// `%25` decodes to another escape: IIS refuses double escaping (404.11).
    #[error("double-encoded characters are not allowed")]
    DoubleEncoded,
    /// NUL or another control character.
    #[error("control characters are not allowed in the path")]
    ControlCharacter,
    /// The decoded path is not UTF-8.
    #[error("the decoded path is not valid UTF-8")]
    NotUtf8,
    /// `..` above the root.
    #[error("the path climbs above the site root")]
    AboveRoot,
    /// A segment that some backends treat as a dot segment (`..;x`, `...`).
    #[error("ambiguous dot segment")]
    AmbiguousDotSegment,
}

/// A normalised request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath {
    /// What the backend receives: dot segments resolved, `//` merged, re-encoded.
    pub forward: String,
    /// What locations are matched against: lowercase, no parameters, no trailing dots or spaces,
    /// without a trailing slash; empty for the root.
    pub canonical: String,
}

/// Normalises the path part of a request target (no query).
pub fn normalize(raw: &str) -> Result<NormalizedPath, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = percent_decode(raw.as_bytes())?;
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::NotUtf8)?;
    let trailing_slash = decoded.ends_with('/') || decoded.ends_with("/.");

    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
            }
            s => {
                let bare = s.split(';').next().unwrap_or(s);
                if !bare.is_empty() && is_only_dots_and_spaces(bare) {
                    return Err(PathError::AmbiguousDotSegment);
                }
                segments.push(s);
            }
        }
    }

    let mut forward = String::with_capacity(raw.len());
    let mut canonical = String::with_capacity(raw.len());
    for segment in &segments {
        forward.push('/');
        encode_segment(segment, &mut forward);
        // A segment that is only a `;` parameter (`/;x/secure`) is empty to a backend that drops
        // parameters and merges slashes; an empty segment here would dodge `/secure`.
        let matched = canonical_segment(segment);
        if !matched.is_empty() {
            canonical.push('/');
            canonical.push_str(&matched);
        }
    }
    if forward.is_empty() || (trailing_slash && !segments.is_empty()) {
        forward.push('/');
    }
    Ok(NormalizedPath { forward, canonical })
}

/// The matching form of a configured location path (`/Public/`, `public` → `/public`).
pub fn canonical_location(path: &str) -> Result<String, PathError> {
    let with_slash = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    normalize(&with_slash).map(|p| p.canonical)
}

/// Whether `canonical` lies in the location `location` (whole segments; empty = site root).
pub fn in_location(canonical: &str, location: &str) -> bool {
    canonical.starts_with(location)
        && (canonical.len() == location.len() || canonical.as_bytes()[location.len()] == b'/')
}

fn is_only_dots_and_spaces(s: &str) -> bool {
    s.bytes().all(|b| b == b'.' || b == b' ')
}

/// Lowercase, `;params` dropped, trailing dots and spaces trimmed (Windows ignores them).
fn canonical_segment(segment: &str) -> String {
    let bare = segment.split(';').next().unwrap_or(segment);
    bare.trim_end_matches(['.', ' ']).to_lowercase()
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let hi = raw.get(i + 1).and_then(|c| hex_value(*c));
            let lo = raw.get(i + 2).and_then(|c| hex_value(*c));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEscape);
            };
            let decoded = hi << 4 | lo;
            if decoded == b'%' {
                return Err(PathError::DoubleEncoded);
            }
            out.push(decoded);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    for b in &mut out {
        if *b < 0x20 || *b == 0x7f {
            return Err(PathError::ControlCharacter);
        }
        if *b == b'\\' {
            // IIS and Windows backends treat a backslash as a separator.
            *b = b'/';
        }
    }
    Ok(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Everything but RFC 3986 `pchar`s (unreserved, sub-delims, `:` and `@`) is percent-encoded.
const NOT_PCHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// RFC 3986 `pchar`s stay literal; everything else is percent-encoded.
fn encode_segment(segment: &str, out: &mut String) {
    out.extend(utf8_percent_encode(segment, NOT_PCHAR));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn normalises_forward_and_canonical_forms() {
        let cases = [
            ("/", "/", ""),
            ("/a/b", "/a/b", "/a/b"),
            ("/a//b/", "/a/b/", "/a/b"),
            ("/a/./b/../c", "/a/c", "/a/c"),
            (
                "/Public/Index.html",
                "/Public/Index.html",
                "/public/index.html",
            ),
            ("/p%75blic/x", "/public/x", "/public/x"),
            ("/public%2F..%2Fsecure", "/secure", "/secure"),
            ("/public%2e%2e/x", "/public../x", "/public/x"),
            ("/public/%2e%2e/secure", "/secure", "/secure"),
            ("/public\\..\\secure", "/secure", "/secure"),
            ("/a b/%C3%A9", "/a%20b/%C3%A9", "/a b/é"),
            (
                "/secure;jsessionid=1/x",
                "/secure;jsessionid=1/x",
                "/secure/x",
            ),
            ("/secure./x", "/secure./x", "/secure/x"),
            ("/a/b/.", "/a/b/", "/a/b"),
            ("/a?b", "/a%3Fb", "/a?b"),
        ];
        for (raw, forward, canonical) in cases {
            let n = normalize(raw).unwrap();
            assert_eq!(
                (n.forward.as_str(), n.canonical.as_str()),
                (forward, canonical),
                "{raw}"
            );
        }
    }

    #[test]
    fn refuses_ambiguous_paths() {
        let cases = [
            ("public", PathError::NotAbsolute),
            ("/%zz", PathError::BadEscape),
            ("/%2", PathError::BadEscape),
            ("/%252e%252e/secure", PathError::DoubleEncoded),
            ("/a%00b", PathError::ControlCharacter),
            ("/a%0d%0aX: y", PathError::ControlCharacter),
            ("/..", PathError::AboveRoot),
            ("/a/../../b", PathError::AboveRoot),
            ("/public/..;/secure", PathError::AmbiguousDotSegment),
            ("/public/.../secure", PathError::AmbiguousDotSegment),
            ("/%ff", PathError::NotUtf8),
        ];
        for (raw, err) in cases {
            assert_eq!(normalize(raw), Err(err), "{raw}");
        }
    }

    #[test]
    fn parameter_only_segments_do_not_count_for_matching() {
        // Found by tests/differential.rs: `/;x/secure` was matched as `//secure`, outside the
        // location `/secure`, while Tomcat and friends serve it as `/secure`.
        let p = normalize("/;x/secure").unwrap();
        assert_eq!(
            (p.forward.as_str(), p.canonical.as_str()),
            ("/;x/secure", "/secure")
        );
        assert!(in_location(
            &p.canonical,
            &canonical_location("/secure").unwrap()
        ));
        assert_eq!(normalize("/;jsessionid=1").unwrap().canonical, "");
    }

    #[test]
    fn matches_whole_segments_only() {
        assert!(in_location("/public", "/public"));
        assert!(in_location("/public/x", "/public"));
        assert!(!in_location("/publicity", "/public"));
        assert!(in_location("/anything", ""));
        assert!(in_location("", ""));
        assert_eq!(canonical_location("/Public/").unwrap(), "/public");
        assert_eq!(canonical_location("public").unwrap(), "/public");
        assert_eq!(canonical_location("/").unwrap(), "");
    }
}
