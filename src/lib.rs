//! certgate: an mTLS reverse proxy that maps client certificates to users exactly as IIS
//! "Client Certificate Mapping Authentication" does.
//!
//! The crate is laid out by job: [`config`] turns a TOML file into validated runtime types once,
//! [`tls`] terminates TLS and classifies client certificates, [`chain_cache`] keeps what a
//! returning client chain costs once, [`identity`] extracts what a certificate says,
//! [`mapping`] applies IIS one-to-one and many-to-one rules, [`directory`] asks Active
//! Directory, [`decision`] decides each request for the proxy and explain alike,
//! [`forward`] builds what goes to a backend, [`proxy`] runs the per-request phases and
//! forwards, [`iis`] owns IIS vocabulary (sslFlags, status codes), [`server`] runs listeners,
//! reloads and shutdown over the [`state`] they share, [`metrics`] names what is measured and
//! [`admin`] serves health endpoints. The commands beside the proxy (bench, import-iis,
//! explain, mapping, demo, echo-backend) and the test PKI live in [`tools`]. No module depends on one
//! that depends on it.

pub mod admin;
pub mod admin_auth;
pub mod chain_cache;
pub mod config;
pub mod decision;
pub mod denials;
pub mod directory;
pub mod error_page;
pub mod forward;
pub mod identity;
pub mod iis;
pub mod kerberos;
pub mod logging;
pub mod mapping;
pub mod metrics;
pub mod proxy;
pub mod reload_history;
pub mod revocation;
pub mod secret;
pub mod server;
pub mod state;
pub mod tls;
pub mod tools;
pub mod w3c;

// The tools' historical paths (`certgate::pki`, `certgate::bench`, ...), kept so tests,
// benches and scripts written against them keep compiling.
pub use tools::{bench, demo, echo, explain, iis_import, pki};
