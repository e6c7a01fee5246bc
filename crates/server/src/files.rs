//! Files only the server's own user may read: the data directory (0700), the embedded
//! database with its WAL and shared-memory files, and the generated JWT secret (0600).
//!
//! The database holds password hashes and the hashes of live refresh tokens, and the
//! secret signs every access token: another local user who can read either can crack
//! passwords offline or sign in as anyone. The default umask (022) would leave all of
//! them world-readable. SQLite creates `-wal` and `-shm` with the database file's own
//! mode, so creating the database 0600 before SQLite opens it covers all three.
//!
//! Files found with looser modes (made by an older version) are tightened at start; an
//! existing data directory is only warned about, as an operator may share it on purpose.

use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents with mode 0700. An existing directory keeps
/// its mode; a warning names it when others can read or enter it.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    if dir.is_dir() {
        warn_if_shared(dir);
        return Ok(());
    }
    imp::create_dir_all(dir)
}

/// Creates the empty file `path` with mode 0600 unless it exists; an existing file
/// readable by others is set to 0600.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    imp::ensure_file(path)?;
    restrict(path)
}

/// Sets an existing file readable by others to 0600; missing files are fine.
pub fn restrict(path: &Path) -> io::Result<()> {
    imp::restrict(path)
}

/// `path`'s permission bits (e.g. `0o600`); `None` where there are none (not Unix).
pub fn mode(path: &Path) -> io::Result<Option<u32>> {
    imp::mode(path)
}

fn warn_if_shared(dir: &Path) {
    if let Ok(Some(mode)) = mode(dir)
        && mode & 0o077 != 0
    {
        tracing::warn!(
            dir = %dir.display(),
            mode = format_args!("{mode:o}"),
            "the data directory is accessible to other users; consider chmod 700"
        );
    }
}

#[cfg(unix)]
mod imp {
    use std::io;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    pub(super) fn create_dir_all(dir: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }

    pub(super) fn ensure_file(path: &Path) -> io::Result<()> {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(err) => Err(err),
        }
    }

    pub(super) fn restrict(path: &Path) -> io::Result<()> {
        let mode = match std::fs::metadata(path) {
            Ok(meta) => meta.permissions().mode() & 0o777,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "file was readable by other users; setting it to 600"
            );
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    pub(super) fn mode(path: &Path) -> io::Result<Option<u32>> {
        Ok(Some(std::fs::metadata(path)?.permissions().mode() & 0o777))
    }
}

#[cfg(not(unix))]
mod imp {
    use std::io;
    use std::path::Path;

    pub(super) fn create_dir_all(dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    pub(super) fn ensure_file(path: &Path) -> io::Result<()> {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(err) => Err(err),
        }
    }

    pub(super) fn restrict(_path: &Path) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn mode(_path: &Path) -> io::Result<Option<u32>> {
        Ok(None)
    }
}
