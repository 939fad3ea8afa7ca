//! The data folder as a [`Store`], and as the spool sinks write into.
//!
//! A key is a path below the root; [`LocalStore::path`] refuses any key that is not plain
//! (`layout::is_valid_key`), so nothing outside the root is ever opened. Atomic puts go
//! through `<key>.tmp` and a rename (synced first when asked). The blocking methods are for
//! code already on the blocking pool (the sinks' file work); the [`Store`] methods move the
//! same work there themselves.

use super::{invalid_key, layout, BoxFuture, Durability, Store};
use bytes::Bytes;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Files under one folder.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store (and spool) rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    /// The folder everything is under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `key` lives on disk, if it is a valid key.
    pub fn path(&self, key: &str) -> io::Result<PathBuf> {
        if !layout::is_valid_key(key) {
            return Err(invalid_key(key));
        }
        Ok(self.root.join(key))
    }

    /// Replaces `key` with `bytes` through `<key>.tmp` and a rename, so readers see the old
    /// content or the new, never a part; `Synced` also syncs the data before the rename.
    /// Creates the folders it needs.
    pub fn put_blocking(&self, key: &str, bytes: &[u8], durability: Durability) -> io::Result<()> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut temp = path.as_os_str().to_owned();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        if durability == Durability::Synced {
            file.sync_all()?;
        }
        std::fs::rename(&temp, &path)
    }

    /// Writes a file that is never replaced (a media segment) in one go, creating its folder.
    pub fn write_blocking(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)
    }

    /// Creates a new file for piecewise writing (a recording), refusing to replace one.
    pub fn create_new_blocking(&self, key: &str) -> io::Result<File> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// Opens an existing file to read, or to read and write (finalising a recording).
    pub fn open_blocking(&self, key: &str, write: bool) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(self.path(key)?)
    }

    /// The whole file.
    pub fn read_blocking(&self, key: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(key)?)
    }

    /// Removes a file; a missing one is not an error.
    pub fn delete_blocking(&self, key: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(key)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Removes a folder and everything in it; a missing one is not an error.
    pub fn delete_prefix_blocking(&self, prefix: &str) -> io::Result<()> {
        match std::fs::remove_dir_all(self.path(prefix)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// The keys of the plain files directly in the folder `prefix`, sorted (temporary
    /// `.tmp` files and anything whose name is not a valid key are left out).
    pub fn list_blocking(&self, prefix: &str) -> io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(self.path(prefix)?) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let key = format!("{prefix}/{name}");
            if !name.ends_with(".tmp") && layout::is_valid_key(&key) {
                keys.push(key);
            }
        }
        keys.sort_unstable();
        Ok(keys)
    }

    fn read_range_blocking(&self, key: &str, range: Range<u64>) -> io::Result<Vec<u8>> {
        let mut file = File::open(self.path(key)?)?;
        file.seek(SeekFrom::Start(range.start))?;
        let mut out = Vec::new();
        file.take(range.end.saturating_sub(range.start))
            .read_to_end(&mut out)?;
        Ok(out)
    }

    /// Runs `work` on a clone of this store on the blocking pool.
    fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(LocalStore) -> io::Result<T> + Send + 'static,
    ) -> BoxFuture<'static, io::Result<T>> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(store))
                .await
                .map_err(io::Error::other)?
        })
    }
}

impl Store for LocalStore {
    fn put(
        &self,
        key: &str,
        bytes: Bytes,
        durability: Durability,
    ) -> BoxFuture<'_, io::Result<()>> {
        let key = key.to_string();
        self.blocking(move |store| store.put_blocking(&key, &bytes, durability))
    }

    fn read_range(&self, key: &str, range: Range<u64>) -> BoxFuture<'_, io::Result<Bytes>> {
        let key = key.to_string();
        let read = self.blocking(move |store| store.read_range_blocking(&key, range));
        Box::pin(async move { read.await.map(Bytes::from) })
    }

    fn read(&self, key: &str) -> BoxFuture<'_, io::Result<Bytes>> {
        let key = key.to_string();
        let read = self.blocking(move |store| store.read_blocking(&key));
        Box::pin(async move { read.await.map(Bytes::from) })
    }

    fn list(&self, prefix: &str) -> BoxFuture<'_, io::Result<Vec<String>>> {
        let prefix = prefix.to_string();
        self.blocking(move |store| store.list_blocking(&prefix))
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, io::Result<()>> {
        let key = key.to_string();
        self.blocking(move |store| store.delete_blocking(&key))
    }

    fn delete_prefix(&self, prefix: &str) -> BoxFuture<'_, io::Result<()>> {
        let prefix = prefix.to_string();
        self.blocking(move |store| store.delete_prefix_blocking(&prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn puts_reads_lists_and_deletes_by_key_only_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("data"));
        let key = "clips/A-b/c.mp4";
        store
            .put(key, Bytes::from_static(b"0123456789"), Durability::Synced)
            .await
            .unwrap();
        assert_eq!(&store.read(key).await.unwrap()[..], b"0123456789");
        assert_eq!(&store.read_range(key, 2..5).await.unwrap()[..], b"234");
        assert_eq!(&store.read_range(key, 8..50).await.unwrap()[..], b"89");
        store
            .put("clips/A-b/a.mp4", Bytes::new(), Durability::Cached)
            .await
            .unwrap();
        std::fs::write(dir.path().join("data/clips/A-b/x.mp4.tmp"), b"").unwrap();
        assert_eq!(
            store.list("clips/A-b").await.unwrap(),
            ["clips/A-b/a.mp4", "clips/A-b/c.mp4"]
        );
        assert!(store.list("clips/none").await.unwrap().is_empty());
        store.delete(key).await.unwrap();
        store.delete(key).await.unwrap(); // missing: fine
        assert_eq!(store.list("clips/A-b").await.unwrap(), ["clips/A-b/a.mp4"]);
        store.delete_prefix("clips").await.unwrap();
        assert!(!dir.path().join("data/clips").exists());

        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        for bad in [
            "../secret",
            "/etc/passwd",
            "clips/../../secret",
            ".disk-reserve",
        ] {
            let err = store.read(bad).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
    }
}
