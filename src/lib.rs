//! certgate: an mTLS reverse proxy that maps client certificates to users exactly as IIS
//! "Client Certificate Mapping Authentication" does.
//!
//! The crate is laid out by job: [`config`] turns a TOML file into validated runtime types once,
//! [`tls`] terminates TLS and classifies client certificates, [`identity`] extracts what a
//! certificate says, [`mapping`] applies IIS one-to-one and many-to-one rules, [`proxy`] runs the
//! per-request phases and forwards, [`iis`] owns IIS vocabulary (sslFlags, status codes), and
//! [`admin`] serves health endpoints.

pub mod admin;
pub mod bench;
pub mod config;
pub mod demo;
pub mod directory;
pub mod echo;
pub mod explain;
pub mod identity;
pub mod iis;
pub mod iis_import;
pub mod kerberos;
pub mod logging;
pub mod mapping;
pub mod pki;
pub mod proxy;
pub mod server;
pub mod tls;
