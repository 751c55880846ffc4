//! A shareable copy of a bundle: `<label>.tar.gz` beside the folder, which
//! unpacks to `<label>/` byte for byte, and `<label>.tar.gz.sha256` in the
//! `sha256sum` format (`sha256sum -c` checks it). The folder is left as it
//! is. Both files are written under temporary names and renamed when
//! complete, so a half-written archive is never taken for a finished one.

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub tar_gz: PathBuf,
    pub sha256_file: PathBuf,
    pub sha256: String,
    /// Size of the `.tar.gz`.
    pub bytes: u64,
    /// Bytes of the files archived.
    pub content_bytes: u64,
}

/// Hashes and counts what goes to the file.
struct Hashing<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts what is read, for the progress line.
struct Counting<'a, R: Read> {
    inner: R,
    done: &'a mut u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        *self.done += n as u64;
        (self.progress)(*self.done, self.total);
        Ok(n)
    }
}

/// The bundle's files and folders, relative, sorted (the archive's order
/// does not depend on the file system's).
fn walk(
    root: &Path,
    rel: &Path,
    dirs: &mut Vec<PathBuf>,
    files: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let r = rel.join(e.file_name());
        let t = e.file_type()?;
        if t.is_dir() {
            dirs.push(r.clone());
            walk(root, &r, dirs, files)?;
        } else if t.is_file() {
            files.push(r);
        }
    }
    Ok(())
}

/// The archive paths for the bundle folder `bundle`.
pub fn paths(bundle: &Path) -> io::Result<(String, PathBuf, PathBuf)> {
    let label = bundle
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::other(format!("'{}' is not a bundle folder", bundle.display())))?
        .to_string();
    let parent = bundle.parent().unwrap_or(Path::new("."));
    Ok((
        label.clone(),
        parent.join(format!("{label}.tar.gz")),
        parent.join(format!("{label}.tar.gz.sha256")),
    ))
}

/// Writes the archive of `bundle` and its checksum file; `progress(done,
/// total)` is called as the files' bytes are read.
pub fn write(bundle: &Path, progress: &mut dyn FnMut(u64, u64)) -> io::Result<Archive> {
    let (label, tar_gz, sum_path) = paths(bundle)?;
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    walk(bundle, Path::new(""), &mut dirs, &mut files)?;
    let total: u64 = files
        .iter()
        .map(|f| fs::metadata(bundle.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum();
    let part = tar_gz.with_file_name(format!(".{label}.tar.gz.partial"));
    let out = Hashing {
        inner: BufWriter::with_capacity(1 << 20, File::create(&part)?),
        hasher: Sha256::new(),
        bytes: 0,
    };
    let gz = GzEncoder::new(out, Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let top = Path::new(&label);
    tar.append_dir(top, bundle)?;
    for d in &dirs {
        tar.append_dir(top.join(d), bundle.join(d))?;
    }
    let mut done = 0u64;
    for f in &files {
        let src = bundle.join(f);
        let file = File::open(&src)?;
        let meta = file.metadata()?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata(&meta);
        let reader = Counting {
            inner: file,
            done: &mut done,
            total,
            progress,
        };
        tar.append_data(&mut header, top.join(f), reader)?;
    }
    let gz = tar.into_inner()?;
    let mut out = gz.finish()?;
    out.flush()?;
    let Hashing {
        inner,
        hasher,
        bytes,
    } = out;
    let file = inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&part, &tar_gz)?;
    let sha256 = hex::encode(hasher.finalize());
    // sha256sum's format: the hash, two spaces (text mode), the name as
    // it is beside the sidecar.
    let line = format!("{sha256}  {label}.tar.gz\n");
    let sum_part = sum_path.with_file_name(format!(".{label}.tar.gz.sha256.partial"));
    fs::write(&sum_part, line)?;
    fs::rename(&sum_part, &sum_path)?;
    Ok(Archive {
        tar_gz,
        sha256_file: sum_path,
        sha256,
        bytes,
        content_bytes: total,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_archive_holds_the_folder_and_its_checksum_file_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path().join("call-x");
        fs::create_dir_all(b.join("server")).unwrap();
        fs::create_dir_all(b.join("db")).unwrap();
        fs::write(b.join("server/homeserver.log"), b"line 1\nline 2\n").unwrap();
        fs::write(b.join("manifest.json"), b"{}\n").unwrap();
        let mut calls = 0;
        let a = write(&b, &mut |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .unwrap();
        assert!(calls > 0);
        assert_eq!(a.content_bytes, 17);
        let sum = fs::read_to_string(&a.sha256_file).unwrap();
        assert_eq!(sum, format!("{}  call-x.tar.gz\n", a.sha256));
        let data = fs::read(&a.tar_gz).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&data)), a.sha256);
        let mut names: Vec<String> = tar::Archive::new(flate2::read::GzDecoder::new(&data[..]))
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "call-x",
                "call-x/db",
                "call-x/manifest.json",
                "call-x/server",
                "call-x/server/homeserver.log"
            ]
        );
        assert!(b.join("manifest.json").is_file(), "the folder stays");
    }
}
