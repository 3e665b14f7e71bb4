//! Administrator tools that work on configuration files, apart from the proxy core.

pub mod mapping_cli;
