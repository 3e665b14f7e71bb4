//! Running `certgate mapping ...` as a user would, for the mapping CLI tests (TOML- and
//! table-backed sites alike).

use std::path::Path;

/// One finished `certgate mapping` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n{}{}", self.code, self.stdout, self.stderr)
    }
}

/// `certgate mapping ARGS`, without an inherited `CERTGATE_CONFIG`.
pub async fn mapping(args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .arg("mapping")
        .args(args)
        .env_remove("CERTGATE_CONFIG")
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
