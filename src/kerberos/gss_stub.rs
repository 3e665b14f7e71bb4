//! Stand-in for `gss.rs` in builds without the `kerberos` feature. The loader refuses a
//! `[kerberos]` section in such builds, so none of this runs; it fails closed if it ever does.

use std::time::Duration;

use super::error::{KdcFailure, Step};

/// No credential can exist without GSS-API.
#[derive(Debug, Clone)]
pub struct Credential;

impl Credential {
    /// Always expired.
    pub fn lifetime(&self) -> Duration {
        Duration::ZERO
    }
}

fn unavailable(step: Step) -> KdcFailure {
    KdcFailure::other(step, "certgate was built without the `kerberos` feature")
}

pub fn service_from_keytab(_: &str) -> Result<Credential, KdcFailure> {
    Err(unavailable(Step::Service))
}

pub fn from_password(_: &str, _: &str, step: Step) -> Result<Credential, KdcFailure> {
    Err(unavailable(step))
}

pub fn impersonate(_: &Credential, _: &str) -> Result<Credential, KdcFailure> {
    Err(unavailable(Step::S4u2Self))
}

pub fn token(_: &Credential, _: &str) -> Result<Vec<u8>, KdcFailure> {
    Err(unavailable(Step::ServiceTicket))
}

/// No context can exist without GSS-API.
#[derive(Debug)]
pub struct Pending;

pub fn start(_: &Credential, _: &str) -> Result<(Vec<u8>, Pending), KdcFailure> {
    Err(unavailable(Step::ServiceTicket))
}

pub fn finish(_: Pending, _: &[u8]) -> Result<(), String> {
    Err("certgate was built without the `kerberos` feature".into())
}
