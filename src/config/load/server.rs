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
        (self.errors.len() == errors_before && listen.len() == raw.server.listen.len()).then(|| {
            ServerSettings {
                listen,
                admin_listen,
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
