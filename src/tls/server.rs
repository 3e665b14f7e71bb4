//! Per-site rustls server configs and their resumption state.
//!
//! Each site gets its own `ServerConfig` because the client-certificate policy lives there. Each
//! site also gets its own ticket keys and session cache: rustls warns never to share resumption
//! state between configs whose verifiers differ, or a session established on one site could be
//! resumed on another. The state is bound to the site's name and trust fingerprint (client CAs,
//! revocation policy, see [`super::client_auth::ClientAuth::trust_fingerprint`]): it is kept
//! across reloads that leave both alone, so a reload does not force every client into a full
//! handshake, and replaced when the trust changes, so no session from before it resumes.
//! Identity is re-judged after every handshake anyway (see [`super::client_auth`]).
//!
//! With `[server] session_ticket_keys`, tickets are sealed with keys derived from the shared
//! file instead (see [`super::ticket_keys`]), so any replica with the file resumes them; the
//! TLS 1.2 session-ID cache stays per process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};

use super::client_auth::ClientAuth;
use super::ticket_keys::TicketKeys;

/// Number of stateful sessions kept per site (TLS 1.2 session IDs).
const SESSION_CACHE_SIZE: usize = 16 * 1024;

/// Resumption state of one site.
#[derive(Clone)]
pub struct Resumption {
    ticketer: Arc<dyn ProducesTickets>,
    cache: Arc<dyn StoresServerSessions>,
}

/// Per-process state of one site and the trust it was made for.
struct Entry {
    fingerprint: [u8; 32],
    state: Resumption,
}

/// Resumption state by site name, owned by a running proxy and reused across reloads.
#[derive(Default)]
pub struct ResumptionKeys {
    sites: Mutex<HashMap<String, Entry>>,
}

impl ResumptionKeys {
    /// The state for a site with this trust fingerprint: the per-process state is created on
    /// first use and replaced when the fingerprint changes; with `shared` keys, tickets are
    /// sealed with keys derived from them for this site and fingerprint.
    pub fn for_site(
        &self,
        site: &str,
        fingerprint: &[u8; 32],
        shared: Option<&TicketKeys>,
    ) -> Result<Resumption, rustls::Error> {
        let mut sites = self
            .sites
            .lock()
            .map_err(|_| rustls::Error::General("resumption state poisoned".into()))?;
        let local = match sites.get(site) {
            Some(existing) if existing.fingerprint == *fingerprint => existing.state.clone(),
            _ => {
                let fresh = Resumption {
                    ticketer: rustls::crypto::aws_lc_rs::Ticketer::new()?,
                    cache: ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
                };
                sites.insert(
                    site.to_owned(),
                    Entry {
                        fingerprint: *fingerprint,
                        state: fresh.clone(),
                    },
                );
                fresh
            }
        };
        match shared {
            None => Ok(local),
            Some(keys) => Ok(Resumption {
                ticketer: Arc::new(keys.ticketer(site, fingerprint)?),
                cache: local.cache,
            }),
        }
    }
}

/// Builds a site's server config: TLS 1.3 and 1.2 (if `provider` has a TLS 1.2 suite), the
/// server's cipher-suite order over the client's (see [`super::cipher_suites`]), ALPN h2 then
/// http/1.1, the certificate requested in the initial handshake (no renegotiation, so HTTP/2
/// and TLS 1.3 work).
pub fn server_config(
    provider: Arc<CryptoProvider>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: Arc<ClientAuth>,
    resumption: Resumption,
) -> Result<ServerConfig, rustls::Error> {
    let mut config = super::cipher_suites::ordered_config(provider, client_auth, chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = resumption.ticketer;
    // One ticket is enough to resume; each extra one costs a record and an encryption per
    // handshake (measured: -4% server CPU per full handshake).
    config.send_tls13_tickets = 1;
    config.session_storage = resumption.cache;
    Ok(config)
}
