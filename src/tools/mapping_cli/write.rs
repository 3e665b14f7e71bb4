//! Replacing the configuration file atomically.
//!
//! The proxy (its file watcher, a SIGHUP, a container restart) may read the file at any moment,
//! so it must only ever see the old file or the new one, never a half-written one: the new text
//! goes to a temporary file in the same directory, is flushed to disk, and is renamed over the
//! old one; the directory is then flushed so the rename survives a crash. The file keeps its
//! permissions and owner, since it may hold nothing secret but is still read by a service
//! account.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why the file could not be replaced; in every case it is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// An I/O step failed.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// What was being done.
        action: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// Someone else changed the file between reading and writing.
    #[error(
        "{0} was changed by someone else while this edit was made; nothing was written, run the \
         command again"
    )]
    Changed(String),
}

/// Writes `text` over `path` atomically, unless the file no longer holds `expected`.
pub fn replace(path: &Path, expected: &[u8], text: &str) -> Result<(), WriteError> {
    let io = |path: &Path, action: &'static str| {
        let path = path.display().to_string();
        move |source| WriteError::Io {
            path,
            action,
            source,
        }
    };
    // Write where the file really is: renaming over a symbolic link would replace the link.
    let target = std::fs::canonicalize(path).map_err(io(path, "cannot resolve the path"))?;
    let dir = target
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let meta = std::fs::metadata(&target).map_err(io(&target, "cannot read its metadata"))?;
    let (tmp_path, mut tmp) = create_temporary(&target, &dir)?;
    let result = (|| {
        tmp.write_all(text.as_bytes())
            .map_err(io(&tmp_path, "cannot write"))?;
        tmp.set_permissions(std::fs::Permissions::from_mode(
            meta.permissions().mode() & 0o7777,
        ))
        .map_err(io(&tmp_path, "cannot set permissions"))?;
        let tmp_meta = tmp
            .metadata()
            .map_err(io(&tmp_path, "cannot read its metadata"))?;
        if (tmp_meta.uid(), tmp_meta.gid()) != (meta.uid(), meta.gid()) {
            std::os::unix::fs::fchown(&tmp, Some(meta.uid()), Some(meta.gid())).map_err(io(
                &target,
                "cannot give the new file the old one's owner and group (run as root or as the owner)",
            ))?;
        }
        tmp.sync_all()
            .map_err(io(&tmp_path, "cannot flush to disk"))?;
        // A concurrent editor (another `certgate mapping`, a person) must not lose its change.
        let now = std::fs::read(&target).map_err(io(&target, "cannot read"))?;
        if now != expected {
            return Err(WriteError::Changed(path.display().to_string()));
        }
        std::fs::rename(&tmp_path, &target).map_err(io(&target, "cannot replace"))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir, "cannot flush the directory"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result
}

/// A new file next to `target`, readable only by its creator until it gets the old mode.
fn create_temporary(target: &Path, dir: &Path) -> Result<(PathBuf, File), WriteError> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".to_owned());
    let mut last = None;
    for attempt in 0..100u32 {
        let candidate = dir.join(format!(
            ".{name}.certgate-edit.{}.{attempt}",
            std::process::id()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&candidate)
        {
            Ok(file) => return Ok((candidate, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(source) => {
                return Err(WriteError::Io {
                    path: dir.display().to_string(),
                    action: "cannot create a temporary file",
                    source,
                });
            }
        }
    }
    Err(WriteError::Io {
        path: dir.display().to_string(),
        action: "cannot create a temporary file",
        source: last.unwrap_or_else(|| std::io::Error::other("no free name")),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keeps_the_mode_and_replaces_the_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        replace(&path, b"a = 1\n", "a = 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 2\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        // Nothing left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_when_the_file_changed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "a = 3\n").unwrap();
        let err = replace(&path, b"a = 1\n", "a = 2\n").unwrap_err();
        assert!(matches!(err, WriteError::Changed(_)), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 3\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn writes_through_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        let link = dir.path().join("link.toml");
        std::fs::write(&real, "a = 1\n").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        replace(&link, b"a = 1\n", "a = 2\n").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "a = 2\n");
    }
}
