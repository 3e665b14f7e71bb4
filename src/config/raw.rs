//! The TOML file as written by a person, before any validation.
//!
//! Field names follow IIS vocabulary in snake_case so an IIS administrator recognises every key.
//! Everything here is plain data: files are not read and nothing is checked beyond TOML types and
//! unknown keys (`deny_unknown_fields`), so that the loader can report every problem at once
//! with its key path. The same types are serialised by `certgate import-iis`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::directory::config::{RawDirectory, RawSiteDirectory};
pub use crate::forward::headers::RawHeaders;
pub use crate::mapping::many_to_one::raw::{RawManyToOne, RawRule};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Listeners and process-wide limits.
    #[serde(default)]
    pub server: RawServer,
    /// Names of the identity headers sent to backends.
    #[serde(default, skip_serializing_if = "RawHeaders::is_default")]
    pub headers: RawHeaders,
    /// Active Directory over LDAP, for account checks and AD certificate mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<RawDirectory>,
    /// IIS `<siteDefaults><logFile>`: W3C logging every site inherits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<crate::w3c::RawLogFile>,
    /// Revocation fetching: limits and the state directory (see README "Revocation").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<crate::revocation::config::RawRevocation>,
    /// certgate's Kerberos service account, for Kerberos to the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kerberos: Option<crate::kerberos::RawKerberos>,
    /// IIS sites, each with its own TLS identity, client-certificate policy and backend.
    #[serde(default, rename = "site")]
    pub sites: Vec<RawSite>,
}

/// `[server]`: where certgate listens and how long it waits.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// HTTPS listeners (`"127.0.0.1:8443"`, `"[::]:443"`); SNI picks the site.
    #[serde(default)]
    pub listen: Vec<String>,
    /// Plain-HTTP admin listener for `/healthz`; keep it on loopback or a private network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<String>,
    /// Client-certificate authentication for the admin listener (TLS with its own identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<crate::admin_auth::RawAdminAuth>,
    /// Site used for clients that send no SNI (IP-literal URLs). Defaults to the first site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_site: Option<String>,
    /// Whole TLS handshake, from TCP accept to Finished. Default 10s.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub handshake_timeout: Option<Duration>,
    /// Time a client has to send complete request headers (slowloris guard). Default 30s.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub header_read_timeout: Option<Duration>,
    /// Connecting to a backend; failure answers 502. Default 5s.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub backend_connect_timeout: Option<Duration>,
    /// Waiting for a backend's response headers; expiry answers 504. Default 60s.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub backend_response_timeout: Option<Duration>,
    /// A connection with no request in flight and no traffic for this long is closed. Default
    /// 60s.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
    /// Largest request header block accepted, in bytes; larger answers 431. Default 65536.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_header_bytes: Option<usize>,
    /// Client connections served at once; more wait in the listen backlog. Default 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Reload when the config file or any file it names changes (certificates, keys, CRLs,
    /// CAs, passwords). Default false; SIGHUP always reloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<bool>,
    /// Session-ticket keys shared by replicas: one base64 line of 80 random bytes per key
    /// (`openssl rand -base64 80`), the last encrypting; mode 600. Default: per-process keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_ticket_keys: Option<String>,
    /// TLS cipher suites in the server's order of preference, IANA names; the server's order
    /// wins, as in SChannel. TLS 1.2 is offered only if a TLS 1.2 suite is listed. Default:
    /// AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305, for TLS 1.3 then TLS 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suites: Option<Vec<String>>,
    /// How often watched files are checked. Default 2s.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub watch_interval: Option<Duration>,
}

/// `[[site]]`: one IIS site with its https binding.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    /// IIS site name, used in logs and `<location path="Site/...">` imports.
    pub name: String,
    /// IIS site id; W3C files go to `W3SVC<id>` (the site name without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// SNI and Host names of this site; `*.example.test` matches one label.
    #[serde(default)]
    pub host_names: Vec<String>,
    /// PEM certificate chain, leaf first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// PKCS#12 file with key and chain, instead of `certificate` + `private_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pfx: Option<String>,
    /// Environment variable holding the PFX password (never inline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pfx_password_env: Option<String>,
    /// Trust anchors for client certificates (IIS: Trusted Root store), PEM or DER files.
    #[serde(default)]
    pub client_ca: Vec<String>,
    /// Certificate revocation lists, PEM or DER.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crl: Vec<String>,
    /// Which certificates need revocation status: `"chain"` (default) or `"end_entity"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl_check: Option<String>,
    /// Accept certificates whose issuer has no loaded CRL. Default false (403.13, as IIS does
    /// when it cannot obtain a CRL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_unknown_revocation_status: Option<bool>,
    /// Accept CRLs past their nextUpdate. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_expired_crl: Option<bool>,
    /// Revocation checking as http.sys does it (see README "Revocation").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<crate::revocation::config::RawSiteRevocation>,
    /// IIS `access@sslFlags`: `"Ssl"`, `"Ssl, SslNegotiateCert"`, `"Ssl, SslNegotiateCert,
    /// SslRequireCert"`. Default `"Ssl"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_flags: Option<String>,
    /// IIS `anonymousAuthentication@enabled`. Default false (fail closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_authentication: Option<bool>,
    /// Where certificate problems are reported: `"http"` (default, IIS 403.x pages) or `"tls"`
    /// (the handshake fails with an alert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_errors: Option<String>,
    /// Backend base URL, `http://` or `https://`.
    #[serde(default)]
    pub backend: String,
    /// Trust anchors for an `https://` backend; system roots when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_ca: Vec<String>,
    /// Send the client's Host to the backend (default true), or the backend's authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_host: Option<bool>,
    /// IIS `iisClientCertificateMappingAuthentication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iis_client_certificate_mapping_authentication: Option<RawIisMapping>,
    /// Directory checks for this site's users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<RawSiteDirectory>,
    /// IIS `<logFile>`: W3C logging, over the top-level `[log_file]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<crate::w3c::RawLogFile>,
    /// IIS `<httpErrors>`: error mode and custom error pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_errors: Option<crate::error_page::RawHttpErrors>,
    /// Kerberos to the backend (`Authorization: Negotiate` as the mapped user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_kerberos: Option<crate::kerberos::RawBackendKerberos>,
    /// IIS `<location path="Site/sub">` blocks.
    #[serde(default, rename = "location", skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<RawLocation>,
}

/// `[site.iis_client_certificate_mapping_authentication]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIisMapping {
    /// Turns the mapper on for this scope. Default false, as in IIS.
    #[serde(default)]
    pub enabled: bool,
    /// Default true, as in IIS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_to_one_certificate_mappings_enabled: Option<bool>,
    /// Default true, as in IIS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub many_to_one_certificate_mappings_enabled: Option<bool>,
    /// Domain applied to bare user names (IIS `defaultLogonDomain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_logon_domain: Option<String>,
    /// IIS `logonMethod`; accepted for fidelity, recorded, not used by an LDAP check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logon_method: Option<String>,
    /// A CSV table of more one-to-one mappings (`userName,certificate,enabled`), for very
    /// large lists; see [`crate::mapping::table`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_to_one_mappings_file: Option<String>,
    /// `<oneToOneMappings>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_to_one_mappings: Vec<RawOneToOne>,
    /// `<manyToOneMappings>`, in priority (file) order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub many_to_one_mappings: Vec<RawManyToOne>,
}

/// `<oneToOneMappings><add>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOneToOne {
    /// Windows account the certificate maps to.
    #[serde(default)]
    pub user_name: String,
    /// Base64 DER (IIS form), or PEM pasted as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// A PEM or DER file instead of `certificate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<String>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Environment variable holding the account password (IIS mapping `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// File holding the account password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// `[[site.location]]`: settings for a path and everything below it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocation {
    /// URL path below the site, e.g. `"/public"`; matched by whole segments, case-insensitively.
    pub path: String,
    /// Overrides the enclosing scope's `ssl_flags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_flags: Option<String>,
    /// Overrides the enclosing scope's `anonymous_authentication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_authentication: Option<bool>,
    /// Overrides the enclosing scope's mapper section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iis_client_certificate_mapping_authentication: Option<RawIisMapping>,
    /// Overrides keys of the enclosing scope's directory checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<RawSiteDirectory>,
    /// Overrides keys of the enclosing scope's Kerberos to the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_kerberos: Option<crate::kerberos::RawBackendKerberos>,
    /// Custom error pages and error mode for this path, over the site's (IIS `<location>`
    /// `<httpErrors>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_errors: Option<crate::error_page::RawHttpErrors>,
}
