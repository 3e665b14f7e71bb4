//! MIT krb5 takes the client keytab and the krb5.conf from the process environment
//! (`KRB5_CLIENT_KTNAME`, `KRB5_CONFIG`), and reads it in whatever thread first needs it.
//! Changing the environment of a running multi-threaded process is unsound (and `unsafe` in
//! Rust 2024, which this crate forbids), so `certgate run` instead starts itself again, before
//! any thread exists, with the variables `[kerberos]` asks for. The service account's TGT goes
//! to a private in-memory cache (`KRB5CCNAME=MEMORY:certgate`), never to a file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The in-memory credential cache name certgate runs with.
pub const CCACHE: &str = "MEMORY:certgate";

/// `KRB5_CLIENT_KTNAME` for a keytab path.
pub fn client_ktname(keytab: &Path) -> String {
    format!("FILE:{}", keytab.display())
}

/// The variables `config`'s `[kerberos]` needs that the environment does not already hold.
/// A file that cannot be read or parsed needs nothing here: the loader reports it.
pub fn missing(
    config: &Path,
    current: impl Fn(&str) -> Option<OsString>,
) -> Vec<(String, OsString)> {
    let Ok(text) = std::fs::read_to_string(config) else {
        return Vec::new();
    };
    let Ok(value) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(kerberos) = value.get("kerberos").and_then(toml::Value::as_table) else {
        return Vec::new();
    };
    let base = config
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let path = |key: &str| {
        kerberos.get(key).and_then(toml::Value::as_str).map(|p| {
            let p = Path::new(p);
            let joined = if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            };
            std::path::absolute(&joined).unwrap_or(joined)
        })
    };
    let mut wanted: Vec<(String, OsString)> = Vec::new();
    if let Some(keytab) = path("keytab") {
        wanted.push(("KRB5_CLIENT_KTNAME".into(), client_ktname(&keytab).into()));
        if current("KRB5CCNAME").is_none() {
            wanted.push(("KRB5CCNAME".into(), CCACHE.into()));
        }
    }
    if let Some(conf) = path("krb5_conf") {
        wanted.push(("KRB5_CONFIG".into(), conf.into_os_string()));
    }
    wanted
        .into_iter()
        .filter(|(k, v)| current(k).as_ref() != Some(v))
        .collect()
}

/// Replaces the process with itself under the variables `config` needs; returns only when
/// nothing is needed (`Ok`) or the exec failed (`Err`). Call before any thread starts.
pub fn reexec_if_needed(config: &Path) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let wanted = missing(config, |k: &str| std::env::var_os(k));
    if wanted.is_empty() {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let mut args = std::env::args_os();
    let _argv0 = args.next();
    Err(std::process::Command::new(exe)
        .args(args)
        .envs(wanted)
        .exec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keytab_and_krb5_conf_become_environment_variables_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("certgate.toml");
        std::fs::write(
            &config,
            "[kerberos]\nrealm = \"EXAMPLE.TEST\"\nkeytab = \"svc.keytab\"\nkrb5_conf = \"/etc/k.conf\"\n",
        )
        .unwrap();
        let wanted = missing(&config, |_| None);
        let kt = OsString::from(format!("FILE:{}", dir.path().join("svc.keytab").display()));
        assert_eq!(
            wanted,
            vec![
                ("KRB5_CLIENT_KTNAME".to_owned(), kt.clone()),
                ("KRB5CCNAME".to_owned(), OsString::from(CCACHE)),
                ("KRB5_CONFIG".to_owned(), OsString::from("/etc/k.conf")),
            ]
        );
        // After the re-exec everything is in place: no loop.
        let env = |k: &str| wanted.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert!(missing(&config, env).is_empty());
        // No [kerberos], or a password: nothing to do.
        std::fs::write(&config, "[server]\n").unwrap();
        assert!(missing(&config, |_| None).is_empty());
    }
}
