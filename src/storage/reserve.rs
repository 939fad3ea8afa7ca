//! A disk reserve: a file of real (not sparse) blocks kept in the data folder so that when
//! the disk fills up, recordings can still be finished.
//!
//! Finalising a recording appends its `moov` (a few MiB per recorded hour). On a disk that is
//! full to the byte that append fails and the file would stay fragmented until the next start.
//! So the server keeps `recording.disk_reserve_mb` of zeros in `<data>/.disk-reserve`; a
//! recorder that hits "no space left" deletes it, and the freed blocks take the `moov`s (and
//! the catalog's updates). The reserve is re-made when a recording starts and space allows.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The reserve file (`layout::RESERVE_FILE`); shared by every recorder.
#[derive(Debug)]
pub struct DiskReserve {
    path: PathBuf,
    bytes: u64,
    /// Serialises making and releasing it.
    lock: Mutex<()>,
}

/// Whether an I/O error means the disk (or quota) is full.
pub fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

impl DiskReserve {
    pub fn new(data_dir: &Path, bytes: u64) -> Self {
        DiskReserve {
            path: data_dir.join(super::layout::RESERVE_FILE),
            bytes,
            lock: Mutex::new(()),
        }
    }

    /// Makes the reserve if it is missing or short (blocking I/O). Writes zeros rather than
    /// `set_len`, which would only make a sparse file that reserves nothing.
    pub fn ensure(&self) -> io::Result<()> {
        if self.bytes == 0 {
            return Ok(());
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.bytes) {
            return Ok(());
        }
        let made = (|| {
            let mut file = std::fs::File::create(&self.path)?;
            let zeros = vec![0u8; 1 << 20];
            let mut left = self.bytes;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            file.sync_all()
        })();
        if made.is_err() {
            // A partial reserve would only take space: give back what was written.
            let _ = std::fs::remove_file(&self.path);
        }
        made
    }

    /// Deletes the reserve (blocking I/O); true if it existed and its space is now free.
    pub fn release(&self) -> bool {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::remove_file(&self.path).is_ok()
    }

    /// Size of the reserve in bytes (0 = off).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_real_file_and_releases_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = DiskReserve::new(dir.path(), 3 << 20 | 5);
        reserve.ensure().unwrap();
        let meta = std::fs::metadata(dir.path().join(".disk-reserve")).unwrap();
        assert_eq!(meta.len(), 3 << 20 | 5);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            assert!(meta.blocks() * 512 >= meta.len(), "sparse reserve");
        }
        assert!(reserve.release());
        assert!(!reserve.release());
        reserve.ensure().unwrap();
        assert!(dir.path().join(".disk-reserve").exists());
        let off = DiskReserve::new(dir.path(), 0);
        assert!(off.release()); // releasing removes whatever is there
        off.ensure().unwrap();
        assert!(!dir.path().join(".disk-reserve").exists());
    }
}
