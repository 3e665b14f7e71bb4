//! Session-ticket keys shared by several replicas (`[server] session_ticket_keys`).
//!
//! A replica behind a TCP load balancer can only resume a session another replica issued if both
//! encrypt tickets with the same key. The file holds the same material nginx
//! (`ssl_session_ticket_key`) and HAProxy (`tls-ticket-keys`) use: one base64 line of 80 random
//! bytes per key, the last line encrypting new tickets and every line decrypting, so operators
//! rotate by appending a key everywhere, then dropping the oldest.
//!
//! The file key is never used directly. Each site derives its own AEAD key and key name with
//! HKDF bound to the site name and its trust fingerprint ([`super::client_auth::ClientAuth::
//! trust_fingerprint`]): a ticket issued for another site, or before the site's client CAs or
//! revocation policy changed, carries a key name no current key has and is refused without any
//! decryption attempt, so the client falls back to a full handshake. The client certificate a
//! ticket carries is judged again after every resumption anyway.

use std::fmt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hkdf;
use base64::Engine as _;
use rustls::server::ProducesTickets;

/// Bytes of one key in the file (what nginx and HAProxy call an 80-byte key).
pub const KEY_BYTES: usize = 80;

/// How long a ticket may be used, in seconds; the same as rustls' own per-process tickets.
pub const TICKET_LIFETIME_SECS: u32 = 12 * 60 * 60;

/// A ticket from a replica whose clock is slightly ahead is still accepted.
const CLOCK_SKEW_SECS: u64 = 60;

const KEY_NAME_LEN: usize = 16;
const AEAD_KEY_LEN: usize = 32;
const TIME_LEN: usize = 8;
const TAG_LEN: usize = 16;
const HKDF_LABEL: &[u8] = b"certgate session ticket v1";

/// `openssl rand -base64 80` wraps its output at this column; such a line continues a key.
const OPENSSL_WRAP: usize = 64;

/// Why a key file cannot be used. Never contains the file's contents.
#[derive(Debug, thiserror::Error)]
pub enum TicketKeyError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Group or others have access (ssh refuses private keys like that).
    #[error(
        "{path} is accessible by group or others (mode {mode:04o}); session ticket keys are \
         secret: chmod 600 (group-readable only when another user owns the file, e.g. \
         root:certgate 0440 or a Kubernetes Secret with fsGroup)"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// A line that is not base64.
    #[error("{path}: line {line} is not base64 (one key per line: openssl rand -base64 80)")]
    NotBase64 {
        /// The file.
        path: String,
        /// 1-based line where the key starts.
        line: usize,
    },
    /// A key of the wrong size.
    #[error(
        "{path}: line {line} holds {bytes} bytes; each key must be {KEY_BYTES} random bytes \
         (openssl rand -base64 80)"
    )]
    Length {
        /// The file.
        path: String,
        /// 1-based line where the key starts.
        line: usize,
        /// Decoded size.
        bytes: usize,
    },
    /// No key at all.
    #[error("{path} holds no key (one per line: openssl rand -base64 80)")]
    Empty {
        /// The file.
        path: String,
    },
}

/// The keys of a file, oldest first; the last one encrypts.
#[derive(Clone)]
pub struct TicketKeys {
    keys: Vec<[u8; KEY_BYTES]>,
}

impl fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys themselves never reach a log.
        f.debug_struct("TicketKeys")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl TicketKeys {
    /// Reads a key file, refusing one that group or others can access.
    pub fn load(path: &Path) -> Result<Self, TicketKeyError> {
        let shown = path.display().to_string();
        let read_error = |source| TicketKeyError::Read {
            path: shown.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_error)?;
        check_mode(&shown, &meta)?;
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        Self::parse(&text, &shown)
    }

    /// Keys from file text: blank lines and `#` comments are skipped; a key is one line, or
    /// `openssl rand -base64 80`'s output wrapped at 64 columns.
    pub fn parse(text: &str, path: &str) -> Result<Self, TicketKeyError> {
        let mut keys = Vec::new();
        let mut pending = String::new();
        let mut start = 0;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if pending.is_empty() {
                start = n + 1;
            }
            pending.push_str(line);
            if line.len() == OPENSSL_WRAP && !line.ends_with('=') {
                continue;
            }
            keys.push(decode(&pending, path, start)?);
            pending.clear();
        }
        if !pending.is_empty() {
            keys.push(decode(&pending, path, start)?);
        }
        if keys.is_empty() {
            return Err(TicketKeyError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Self { keys })
    }

    /// Number of keys in the file.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the file had no key (never true for a loaded file).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ticketer of one site: keys derived for `site` and its trust `fingerprint`.
    pub fn ticketer(&self, site: &str, fingerprint: &[u8]) -> Result<SiteTicketer, rustls::Error> {
        let keys = self
            .keys
            .iter()
            .map(|k| SiteKey::derive(k, site, fingerprint))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SiteTicketer { keys })
    }
}

/// ssh's rule for private keys: nobody but the owner may touch a file the process owns. A file
/// owned by another user (root:certgate 0440, or a Kubernetes Secret mounted with `fsGroup`)
/// may be readable by its group, since that group is how the process reads it; others never.
#[cfg(unix)]
fn check_mode(path: &str, meta: &std::fs::Metadata) -> Result<(), TicketKeyError> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let mode = meta.permissions().mode() & 0o7777;
    // The owner of /proc/self is the process's effective uid; without /proc, assume the file
    // is ours and apply the strict rule.
    let ours = std::fs::metadata("/proc/self").map_or(true, |me| me.uid() == meta.uid());
    let forbidden = if ours { 0o077 } else { 0o007 };
    if mode & forbidden != 0 {
        return Err(TicketKeyError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &str, _meta: &std::fs::Metadata) -> Result<(), TicketKeyError> {
    Ok(())
}

fn decode(text: &str, path: &str, line: usize) -> Result<[u8; KEY_BYTES], TicketKeyError> {
    // The decoder's own message would quote the offending byte; ours names only the line.
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| TicketKeyError::NotBase64 {
            path: path.to_owned(),
            line,
        })?;
    <[u8; KEY_BYTES]>::try_from(bytes.as_slice()).map_err(|_| TicketKeyError::Length {
        path: path.to_owned(),
        line,
        bytes: bytes.len(),
    })
}

/// One file key as derived for one site.
struct SiteKey {
    name: [u8; KEY_NAME_LEN],
    aead: RandomizedNonceKey,
}

/// HKDF output length for [`SiteKey::derive`].
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl SiteKey {
    fn derive(
        file_key: &[u8; KEY_BYTES],
        site: &str,
        fingerprint: &[u8],
    ) -> Result<Self, rustls::Error> {
        let failed = |_| rustls::Error::General("cannot derive session ticket keys".into());
        let site_len = u32::try_from(site.len())
            .map_err(|_| rustls::Error::General("site name too long".into()))?
            .to_be_bytes();
        let info: [&[u8]; 4] = [HKDF_LABEL, &site_len, site.as_bytes(), fingerprint];
        let mut okm = [0u8; KEY_NAME_LEN + AEAD_KEY_LEN];
        hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_LABEL)
            .extract(file_key)
            .expand(&info, Len(okm.len()))
            .map_err(failed)?
            .fill(&mut okm)
            .map_err(failed)?;
        let mut name = [0u8; KEY_NAME_LEN];
        name.copy_from_slice(&okm[..KEY_NAME_LEN]);
        let aead = RandomizedNonceKey::new(&AES_256_GCM, &okm[KEY_NAME_LEN..]).map_err(failed)?;
        Ok(Self { name, aead })
    }
}

/// A site's [`ProducesTickets`] from a shared key file. Ticket: key name (16) ‖ nonce (12) ‖
/// AES-256-GCM(issue time (8) ‖ session state) ‖ tag (16), the key name authenticated as AAD.
pub struct SiteTicketer {
    keys: Vec<SiteKey>,
}

impl fmt::Debug for SiteTicketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteTicketer")
            .field("keys", &self.keys.len())
            .finish()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SiteTicketer {
    fn seal_at(&self, plain: &[u8], now: u64) -> Option<Vec<u8>> {
        let key = self.keys.last()?;
        let mut body = Vec::with_capacity(TIME_LEN + plain.len() + TAG_LEN);
        body.extend_from_slice(&now.to_be_bytes());
        body.extend_from_slice(plain);
        let nonce = key
            .aead
            .seal_in_place_append_tag(Aad::from(&key.name), &mut body)
            .ok()?;
        let mut ticket = Vec::with_capacity(KEY_NAME_LEN + NONCE_LEN + body.len());
        ticket.extend_from_slice(&key.name);
        ticket.extend_from_slice(nonce.as_ref());
        ticket.extend_from_slice(&body);
        Some(ticket)
    }

    fn open_at(&self, ticket: &[u8], now: u64) -> Option<Vec<u8>> {
        if ticket.len() < KEY_NAME_LEN + NONCE_LEN + TIME_LEN + TAG_LEN {
            return None;
        }
        let (name, rest) = ticket.split_at(KEY_NAME_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        // The key name picks the key: a ticket of another site or trust configuration matches
        // none and costs no decryption.
        let key = self.keys.iter().rev().find(|k| k.name == name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let plain = key
            .aead
            .open_in_place(nonce, Aad::from(&key.name), &mut body)
            .ok()?;
        let (issued, state) = plain.split_at(TIME_LEN);
        let issued = u64::from_be_bytes(issued.try_into().ok()?);
        let fresh = issued <= now.saturating_add(CLOCK_SKEW_SECS)
            && now.saturating_sub(issued) <= u64::from(TICKET_LIFETIME_SECS);
        fresh.then(|| state.to_vec())
    }
}

impl ProducesTickets for SiteTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        TICKET_LIFETIME_SECS
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal_at(plain, now_secs())
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.open_at(cipher, now_secs())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key_line(seed: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([seed; KEY_BYTES])
    }

    fn keys(seeds: &[u8]) -> TicketKeys {
        let text: Vec<String> = seeds.iter().map(|s| key_line(*s)).collect();
        TicketKeys::parse(&text.join("\n"), "keys").unwrap()
    }

    #[test]
    fn a_ticket_opens_with_the_same_file_site_and_trust() {
        let a = keys(&[1]).ticketer("intranet", b"trust").unwrap();
        let b = keys(&[1]).ticketer("intranet", b"trust").unwrap();
        let ticket = a.encrypt(b"session state").unwrap();
        assert_eq!(b.decrypt(&ticket).unwrap(), b"session state");
        assert!(!ticket.windows(13).any(|w| w == b"session state"));
    }

    #[test]
    fn another_site_trust_or_key_refuses_it() {
        let a = keys(&[1]).ticketer("intranet", b"trust").unwrap();
        let ticket = a.encrypt(b"state").unwrap();
        for other in [
            keys(&[1]).ticketer("extranet", b"trust").unwrap(),
            keys(&[1]).ticketer("intranet", b"other ca").unwrap(),
            keys(&[2]).ticketer("intranet", b"trust").unwrap(),
        ] {
            assert_eq!(other.decrypt(&ticket), None);
        }
    }

    #[test]
    fn rotation_keeps_old_tickets_and_encrypts_with_the_last_key() {
        let old = keys(&[1]).ticketer("s", b"t").unwrap();
        let rotated = keys(&[1, 2]).ticketer("s", b"t").unwrap();
        let old_ticket = old.encrypt(b"x").unwrap();
        assert_eq!(rotated.decrypt(&old_ticket).unwrap(), b"x");
        let new_ticket = rotated.encrypt(b"y").unwrap();
        // A replica that has not rotated yet cannot open it: a full handshake, not an error.
        assert_eq!(old.decrypt(&new_ticket), None);
        let only_new = keys(&[2]).ticketer("s", b"t").unwrap();
        assert_eq!(only_new.decrypt(&new_ticket).unwrap(), b"y");
        assert_eq!(only_new.decrypt(&old_ticket), None);
    }

    #[test]
    fn tampered_truncated_and_expired_tickets_are_refused() {
        let t = keys(&[1]).ticketer("s", b"t").unwrap();
        let ticket = t.seal_at(b"state", 1_000_000).unwrap();
        assert!(t.open_at(&ticket, 1_000_000).is_some());
        let mut bad = ticket.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(t.open_at(&bad, 1_000_000), None);
        assert_eq!(t.open_at(&ticket[..40], 1_000_000), None);
        let lifetime = u64::from(TICKET_LIFETIME_SECS);
        assert!(t.open_at(&ticket, 1_000_000 + lifetime).is_some());
        assert_eq!(t.open_at(&ticket, 1_000_001 + lifetime), None);
        assert_eq!(t.open_at(&ticket, 1_000_000 - CLOCK_SKEW_SECS - 1), None);
    }

    #[test]
    fn openssl_wrapped_output_and_comments_parse() {
        let line = key_line(7);
        let wrapped = format!(
            "# rotated 2026-11-26\n\n{}\n{}\n{}\n",
            &line[..64],
            &line[64..],
            key_line(8)
        );
        let parsed = TicketKeys::parse(&wrapped, "k").unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed.keys[0], [7; KEY_BYTES]);
    }

    #[test]
    fn bad_files_name_the_line_and_never_the_content() {
        let secret = "c2VjcmV0IHNlY3JldA==";
        let err = TicketKeys::parse(&format!("{}\n{secret}\n", key_line(1)), "k").unwrap_err();
        assert_eq!(
            err.to_string(),
            "k: line 2 holds 13 bytes; each key must be 80 random bytes (openssl rand -base64 80)"
        );
        let err = TicketKeys::parse("not*base64!", "k")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1 is not base64") && !err.contains("not*base64"),
            "{err}"
        );
        assert!(matches!(
            TicketKeys::parse("\n# none\n", "k"),
            Err(TicketKeyError::Empty { .. })
        ));
        assert_eq!(format!("{:?}", keys(&[1, 2])), "TicketKeys { keys: 2 }");
    }

    #[cfg(unix)]
    #[test]
    fn group_or_world_readable_files_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticket.keys");
        std::fs::write(&path, key_line(1)).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = TicketKeys::load(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("mode {mode:04o}")), "{err}");
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(TicketKeys::load(&path).unwrap().len(), 1);
        }
        // Owned by someone else (needs root to arrange): its group may read, others may not.
        if std::os::unix::fs::chown(&path, Some(54_321), None).is_ok() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).unwrap();
            assert_eq!(TicketKeys::load(&path).unwrap().len(), 1);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
            assert!(TicketKeys::load(&path).is_err());
        }
    }
}
