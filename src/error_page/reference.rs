//! Reference ids: a short code on every error page, access-log line and W3C line, so a person
//! can read it to the helpdesk and an administrator finds the exact decision.
//!
//! Ten Crockford base32 characters (50 random bits; no I, L, O or U to misread over the phone)
//! from the system CSPRNG. Generated only for refused requests, never on the success path.

use std::fmt;

/// Crockford's base32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a reference.
pub const LEN: usize = 10;

/// A reference id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reference([u8; LEN]);

impl Reference {
    /// A fresh random reference.
    pub fn new() -> Self {
        let mut random = [0u8; 8];
        if aws_lc_rs::rand::fill(&mut random).is_err() {
            // The CSPRNG never fails in practice; fall back to the clock and a counter so an
            // error page is still served (uniqueness, not secrecy, is what matters here).
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            random =
                (nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(40)).to_be_bytes();
        }
        let bits = u64::from_be_bytes(random);
        let mut out = [0u8; LEN];
        for (i, c) in out.iter_mut().enumerate() {
            *c = ALPHABET[((bits >> (5 * i)) & 31) as usize];
        }
        Self(out)
    }

    /// Parses a reference a person typed: case-insensitive, `O`→`0`, `I`/`L`→`1`, dashes and
    /// spaces ignored, as Crockford's decoding rules say.
    pub fn parse(text: &str) -> Option<Self> {
        let mut out = [0u8; LEN];
        let mut n = 0;
        for c in text.trim().chars().filter(|c| *c != '-' && *c != ' ') {
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || n == LEN {
                return None;
            }
            out[n] = c as u8;
            n += 1;
        }
        (n == LEN).then_some(Self(out))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        // Only ALPHABET bytes are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl Default for Reference {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn references_are_ten_unambiguous_characters_and_differ() {
        let a = Reference::new();
        let b = Reference::new();
        assert_eq!(a.as_str().len(), LEN);
        assert!(a.as_str().bytes().all(|c| ALPHABET.contains(&c)));
        assert_ne!(a, b);
    }

    #[test]
    fn parsing_forgives_what_people_type() {
        let r = Reference::parse("0123456789").unwrap();
        assert_eq!(Reference::parse("o123-456 789").unwrap(), r);
        assert_eq!(
            Reference::parse("IL00000000").unwrap().as_str(),
            "1100000000"
        );
        assert_eq!(
            Reference::parse("abcdefghjk").unwrap().as_str(),
            "ABCDEFGHJK"
        );
        assert!(Reference::parse("ABCDEFGHJ").is_none());
        assert!(Reference::parse("ABCDEFGHJKM").is_none());
        assert!(Reference::parse("ABCDEFGHJU").is_none());
        assert!(Reference::parse("<script>").is_none());
    }
}
