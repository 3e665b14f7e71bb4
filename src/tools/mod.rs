//! Everything that is not on the request path: the commands an operator or developer runs
//! beside the proxy, and the test PKI they share.
//!
//! Nothing under `src/` outside this module depends on it (only unit tests use [`pki`]), so a
//! reader of the proxy can skip this whole directory.

pub mod bench;
pub mod check_online;
pub mod demo;
pub mod echo;
pub mod explain;
pub mod explain_kerberos;
pub mod iis_import;
pub mod mapping_cli;
pub mod pki;
