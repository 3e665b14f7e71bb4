//! certgate: an mTLS reverse proxy that maps client certificates to users exactly as IIS
//! "Client Certificate Mapping Authentication" does.
//!
//! The crate is laid out by job: [`config`] turns a TOML file into validated runtime types once,
//! [`tls`] terminates TLS and classifies client certificates, [`identity`] extracts what a
//! certificate says, [`mapping`] applies IIS one-to-one and many-to-one rules, [`proxy`] runs the
//! per-request phases and forwards, [`iis`] owns IIS vocabulary (sslFlags, status codes), and
//! [`admin`] serves health endpoints.

pub mod config;
pub mod directory;
pub mod identity;
