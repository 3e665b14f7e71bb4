//! What certgate sends to a backend, built once from the configuration and used per request:
//! the identity headers ([`headers`]), the normalised request path ([`path`]), and the backend
//! connection pool ([`upstream`]) with its connection-bound logons ([`bound`]).
//!
//! They sit below both [`crate::config`] (which builds them) and [`crate::proxy`] (which uses
//! them per request), so neither depends on the other for them.

pub mod bound;
pub mod headers;
pub mod path;
pub mod upstream;
