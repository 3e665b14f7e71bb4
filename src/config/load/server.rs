//! `[server]`: listeners, timeouts and limits, with their defaults; and the site host names
//! SNI chooses between.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::ServerSettings;
use crate::config::raw::{RawConfig, RawSite};

use super::Loader;

const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
pub(super) const DEFAULT_BACKEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(super) const DEFAULT_BACKEND_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// hyper cannot buffer less than this for HTTP/1.1.
const MIN_MAX_HEADER_BYTES: usize = 8 * 1024;
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(2);

impl Loader<'_> {
    pub(super) fn server(&mut self, raw: &RawConfig) -> Option<ServerSettings> {
        let mut listen = Vec::new();
        if raw.server.listen.is_empty() {
            self.error(
                "server.listen",
                "no HTTPS listener; add e.g. listen = [\"0.0.0.0:443\"]",
            );
        }
        for (i, addr) in raw.server.listen.iter().enumerate() {
            match addr.parse::<SocketAddr>() {
                Ok(a) => listen.push(a),
                Err(_) => self.error(
                    format!("server.listen[{i}]"),
                    format!("`{addr}` is not an IP:port address (e.g. \"0.0.0.0:443\")"),
                ),
            }
        }
        let admin_listen = match &raw.server.admin_listen {
            None => None,
            Some(addr) => match addr.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.error(
                        "server.admin_listen",
                        format!("`{addr}` is not an IP:port address (e.g. \"127.0.0.1:9090\")"),
                    );
                    None
                }
            },
        };
        let errors_before = self.errors.len();
        for (key, value) in [
            ("handshake_timeout", raw.server.handshake_timeout),
            ("header_read_timeout", raw.server.header_read_timeout),
            (
                "backend_connect_timeout",
                raw.server.backend_connect_timeout,
            ),
            (
                "backend_response_timeout",
                raw.server.backend_response_timeout,
            ),
        ] {
            if value == Some(Duration::ZERO) {
                self.error(format!("server.{key}"), "must be greater than zero");
            }
        }
        if let Some(n) = raw.server.max_header_bytes
            && n < MIN_MAX_HEADER_BYTES
        {
            self.error(
                "server.max_header_bytes",
                format!("{n} is below the minimum of {MIN_MAX_HEADER_BYTES}"),
            );
        }
        if raw.server.max_connections == Some(0) {
            self.error("server.max_connections", "must be at least 1");
        }
        if let Some(names) = &raw.server.cipher_suites {
            match crate::tls::cipher_suites::parse(names) {
                Ok(suites) => self.server_tls = crate::tls::cipher_suites::server_provider(suites),
                Err(e) => match e.index() {
                    Some(i) => self.error(format!("server.cipher_suites[{i}]"), e.to_string()),
                    None => self.error("server.cipher_suites", e.to_string()),
                },
            }
        }
        let admin_auth = raw.server.admin.as_ref().and_then(|a| self.admin_auth(a));
        if let Some(file) = &raw.server.session_ticket_keys
            && let Some(path) = self.file_value("server.session_ticket_keys", file)
        {
            match crate::tls::ticket_keys::TicketKeys::load(&path) {
                Ok(keys) => self.ticket_keys = Some(keys),
                Err(e) => self.error("server.session_ticket_keys", e.to_string()),
            }
        }
        (self.errors.len() == errors_before && listen.len() == raw.server.listen.len()).then(|| {
            ServerSettings {
                listen,
                admin_listen,
                admin_auth,
                handshake_timeout: raw
                    .server
                    .handshake_timeout
                    .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
                header_read_timeout: raw
                    .server
                    .header_read_timeout
                    .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT),
                idle_timeout: raw.server.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
                max_header_bytes: raw
                    .server
                    .max_header_bytes
                    .unwrap_or(DEFAULT_MAX_HEADER_BYTES),
                max_connections: raw
                    .server
                    .max_connections
                    .unwrap_or(DEFAULT_MAX_CONNECTIONS),
                watch_interval: raw
                    .server
                    .watch
                    .unwrap_or(false)
                    .then(|| raw.server.watch_interval.unwrap_or(DEFAULT_WATCH_INTERVAL)),
            }
        })
    }

    pub(super) fn host_names(
        &mut self,
        i: usize,
        site: &RawSite,
        exact: &mut HashMap<String, usize>,
        wildcard: &mut HashMap<String, usize>,
        catch_all: &mut Option<usize>,
    ) {
        if site.host_names.is_empty() {
            match catch_all {
                Some(other) => self.error(
                    format!("site[{i}].host_names"),
                    format!(
                        "site[{other}] already serves every name not claimed by another site; \
                         give one of them host_names"
                    ),
                ),
                None => *catch_all = Some(i),
            }
            return;
        }
        for (j, name) in site.host_names.iter().enumerate() {
            let key = format!("site[{i}].host_names[{j}]");
            let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
            let (table, label) = match lower.strip_prefix("*.") {
                Some(rest) => (&mut *wildcard, rest.to_owned()),
                None => (&mut *exact, lower.clone()),
            };
            let valid = !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':')
                && !label.contains("..");
            if !valid {
                self.error(key, format!("`{name}` is not a host name"));
                continue;
            }
            if let Some(other) = table.insert(label, i) {
                if other == i {
                    self.error(key, format!("`{name}` is listed twice"));
                } else {
                    self.error(
                        key,
                        format!(
                            "`{name}` is already claimed by site[{other}]; SNI must pick one site"
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::super::testing::{keys, loader, raw, reason};
    use super::*;
    use crate::config::raw::{RawConfig, RawSite};
    use crate::tls::server::ResumptionKeys;

    #[test]
    fn defaults_apply_and_watching_is_off_unless_asked() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let s = l
            .server(&raw::<RawConfig>("[server]\nlisten = [\"127.0.0.1:443\"]"))
            .unwrap();
        assert_eq!(s.handshake_timeout, DEFAULT_HANDSHAKE_TIMEOUT);
        assert_eq!(s.header_read_timeout, DEFAULT_HEADER_READ_TIMEOUT);
        assert_eq!(s.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        assert_eq!(s.max_header_bytes, 64 * 1024);
        assert_eq!(s.max_connections, 10_000);
        assert_eq!(s.watch_interval, None);
        assert!(s.admin_listen.is_none());

        let s = l
            .server(&raw::<RawConfig>(
                "[server]\nlisten = [\"127.0.0.1:443\"]\nwatch = true",
            ))
            .unwrap();
        assert_eq!(s.watch_interval, Some(Duration::from_secs(2)));
        let s = l
            .server(&raw::<RawConfig>(
                "[server]\nlisten = [\"127.0.0.1:443\"]\nwatch = true\nwatch_interval = \"250ms\"",
            ))
            .unwrap();
        assert_eq!(s.watch_interval, Some(Duration::from_millis(250)));
        assert!(l.errors.is_empty());
    }

    #[test]
    fn bad_listeners_and_limits_are_all_reported() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let config = raw::<RawConfig>(
            "[server]\nlisten = [\"127.0.0.1:443\", \"localhost\"]\nadmin_listen = \":9090\"\n\
             handshake_timeout = \"0s\"\nbackend_response_timeout = \"0s\"\n\
             max_header_bytes = 1024\nmax_connections = 0",
        );
        assert!(l.server(&config).is_none());
        assert_eq!(
            keys(&l),
            [
                "server.listen[1]",
                "server.admin_listen",
                "server.handshake_timeout",
                "server.backend_response_timeout",
                "server.max_header_bytes",
                "server.max_connections",
            ]
        );
        assert!(reason(&l, "server.listen[1]").contains("`localhost` is not an IP:port"));
        assert!(reason(&l, "server.max_header_bytes").contains("minimum of 8192"));
    }

    #[test]
    fn no_listener_is_an_error() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        // Recorded as an error, so the load fails, whatever `server` returns.
        l.server(&RawConfig::default());
        assert!(reason(&l, "server.listen").contains("no HTTPS listener"));
    }

    fn names(
        l: &mut Loader<'_>,
        sites: &[&[&str]],
    ) -> (
        HashMap<String, usize>,
        HashMap<String, usize>,
        Option<usize>,
    ) {
        let (mut exact, mut wildcard, mut catch_all) = (HashMap::new(), HashMap::new(), None);
        for (i, names) in sites.iter().enumerate() {
            let site = RawSite {
                host_names: names.iter().map(|n| n.to_string()).collect(),
                ..RawSite::default()
            };
            l.host_names(i, &site, &mut exact, &mut wildcard, &mut catch_all);
        }
        (exact, wildcard, catch_all)
    }

    #[test]
    fn host_names_are_normalised_into_exact_and_wildcard_tables() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        let (exact, wildcard, catch_all) =
            names(&mut l, &[&["WWW.Example.Test."], &["*.example.test"], &[]]);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(exact.get("www.example.test"), Some(&0));
        assert_eq!(wildcard.get("example.test"), Some(&1));
        assert_eq!(catch_all, Some(2));
    }

    #[test]
    fn conflicting_and_invalid_host_names_are_errors() {
        let k = ResumptionKeys::default();
        let mut l = loader(&k);
        names(
            &mut l,
            &[
                &["a.test", "A.test"],
                &["a.test", "bad name", "x..y"],
                &[],
                &[],
            ],
        );
        assert!(reason(&l, "site[0].host_names[1]").contains("listed twice"));
        assert!(reason(&l, "site[1].host_names[0]").contains("already claimed by site[0]"));
        assert!(reason(&l, "site[1].host_names[1]").contains("is not a host name"));
        assert!(reason(&l, "site[1].host_names[2]").contains("is not a host name"));
        assert!(reason(&l, "site[3].host_names").contains("site[2] already serves every name"));
    }
}
