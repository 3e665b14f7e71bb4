//! The per-request phases and forwarding.

pub mod headers;
pub mod path;
pub mod upstream;
