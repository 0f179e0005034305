//! Writing inside `--out` without following a symbolic link.
//!
//! The `--out` directory itself is opened as the user named it, a symlink
//! included: that one is the user's own choice. Everything tracer creates
//! or writes inside it is reached from that directory's descriptor, one
//! name at a time, with `O_NOFOLLOW`: a symlink planted in the folder (a
//! checked-out docs repository, say) makes the export stop with an error
//! instead of writing through it to wherever it points.

use rustix::fd::OwnedFd;
use rustix::fs::{self, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    #[error(
        "refusing to write through the symbolic link {0} (tracer follows no symlink inside --out)"
    )]
    Symlink(PathBuf),
    #[error("cannot write {0}: it exists and is not a regular file")]
    NotAFile(PathBuf),
    // Not a `source`: the message says it already, and main prints the
    // chain of sources after it.
    #[error("cannot write {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
}

fn io(path: &Path, err: impl Into<std::io::Error>) -> OutDirError {
    OutDirError::Io {
        path: path.to_path_buf(),
        err: err.into(),
    }
}

/// An open directory inside (or at) `--out`.
pub struct OutDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl OutDir {
    /// The `--out` directory, created with its parents if missing.
    pub fn open(path: &Path) -> Result<OutDir, OutDirError> {
        std::fs::create_dir_all(path).map_err(|e| io(path, e))?;
        let fd = fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(path, e))?;
        Ok(OutDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The subdirectory `rel` (`a/b` for nested ones), created if missing.
    pub fn subdir(&self, rel: &str) -> Result<OutDir, OutDirError> {
        let mut dir: Option<OutDir> = None;
        for name in rel.split('/').filter(|n| !n.is_empty()) {
            let parent = dir.as_ref().unwrap_or(self);
            let next = parent.child_dir(name)?;
            dir = Some(next);
        }
        dir.ok_or_else(|| io(&self.path, std::io::ErrorKind::InvalidInput))
    }

    fn child_dir(&self, name: &str) -> Result<OutDir, OutDirError> {
        let path = self.path.join(name);
        match fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(io(&path, e)),
        }
        match fs::openat(
            &self.fd,
            name,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(OutDir { fd, path }),
            Err(e) => Err(self.refusal(name, path, e)),
        }
    }

    /// Writes the file `rel` (`assets/x.js` for one in a subdirectory),
    /// replacing its content. Returns its path.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<PathBuf, OutDirError> {
        let (dir, name) = match rel.rsplit_once('/') {
            Some((d, n)) => (Some(self.subdir(d)?), n),
            None => (None, rel),
        };
        let dir = dir.as_ref().unwrap_or(self);
        let path = dir.path.join(name);
        // NONBLOCK: a FIFO planted in the folder fails at once instead of
        // waiting for a reader; it changes nothing for a regular file.
        let fd = fs::openat(
            &dir.fd,
            name,
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::TRUNC
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| dir.refusal(name, path.clone(), e))?;
        let stat = fs::fstat(&fd).map_err(|e| io(&path, e))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(OutDirError::NotAFile(path));
        }
        std::fs::File::from(fd)
            .write_all(bytes)
            .map_err(|e| io(&path, e))?;
        Ok(path)
    }

    /// The error for a failed open of `name`: a symlink says so.
    fn refusal(&self, name: &str, path: PathBuf, e: Errno) -> OutDirError {
        let is_link = fs::statat(&self.fd, name, fs::AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink);
        if is_link {
            OutDirError::Symlink(path)
        } else if e == Errno::NXIO {
            OutDirError::NotAFile(path)
        } else {
            io(&path, e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn writes_files_and_nested_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let out = OutDir::open(&tmp.path().join("new/out")).unwrap();
        let p = out.write("a.md", b"one").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        out.write("a.md", b"2").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"2");
        let p = out
            .subdir("docs/flow")
            .unwrap()
            .write("x.md", b"x")
            .unwrap();
        assert_eq!(p, tmp.path().join("new/out/docs/flow/x.md"));
        out.write("docs/assets/m.js", b"js").unwrap();
        assert!(tmp.path().join("new/out/docs/assets/m.js").is_file());
    }

    #[test]
    fn refuses_symlinks_inside_but_not_the_out_dir_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        symlink(&victim, real.join("index.md")).unwrap();
        symlink(tmp.path(), real.join("docs")).unwrap();
        let fifo = real.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // The --out directory may be a link the user made.
        let link_out = tmp.path().join("out-link");
        symlink(&real, &link_out).unwrap();
        let out = OutDir::open(&link_out).unwrap();

        let err = out.write("index.md", b"overwritten").unwrap_err();
        assert!(matches!(err, OutDirError::Symlink(_)), "{err}");
        assert!(err.to_string().contains("index.md"), "{err}");
        let err = out.write("docs/x.md", b"x").unwrap_err();
        assert!(matches!(err, OutDirError::Symlink(_)), "{err}");
        let err = out.write("fifo", b"x").unwrap_err();
        assert!(matches!(err, OutDirError::NotAFile(_)), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(!tmp.path().join("x.md").exists());
        out.write("fine.md", b"ok").unwrap();
        assert!(real.join("fine.md").is_file());
    }
}
