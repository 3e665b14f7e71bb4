//! Shared pieces of the fuzz targets: reference models the targets compare certgate against,
//! and fixtures (a throwaway PKI on disk) for targets that load whole configurations.
//!
//! The models are deliberately naive (recursion, no folding tricks, no early exits): they are
//! the readable statement of what the README promises, so a disagreement points at the
//! optimised code.

pub mod dn_model;
pub mod facts;
pub mod glob_model;
pub mod pki_dir;
