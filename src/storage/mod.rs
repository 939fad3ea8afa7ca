//! Where files live: one layout that names them, and the store that holds them.
//!
//! - [`layout`]: every file's key (also its object key in an object store, and for most its
//!   URL path), and client URL paths turned into keys without ever leaving the data folder;
//! - [`Store`]: what the rest of the server needs of a place that holds files — an atomic
//!   put, a ranged read, a listing, a delete — as an interface, so an object store can stand
//!   in for the local disk;
//! - [`local`]: the local-disk store under the data folder. It is also the spool: sinks that
//!   write a file piece by piece (the recorder's fragments, HLS segments) write here, with
//!   the blocking calls of [`LocalStore`], on the blocking pool;
//! - [`reserve`]: disk space kept back so recordings can be finished on a full disk.
//!
//! Not here: which files exist (the catalog lists recordings, replays, clips and picture
//! history) and what goes into them (`sinks`, `mux`).

pub mod layout;
pub mod local;
pub mod reserve;

pub use local::LocalStore;

use bytes::Bytes;
use std::future::Future;
use std::io;
use std::ops::Range;
use std::pin::Pin;

/// A boxed future, so [`Store`] can be used as `dyn Store`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Whether a put must reach stable storage before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Synced before the rename that publishes it: listed assets (clips) survive a power
    /// loss.
    Synced,
    /// Left to the page cache: replaceable files (latest pictures, replay playlists).
    Cached,
}

/// A place that holds files by key ([`layout`]). Every method refuses an invalid key with
/// `InvalidInput` before touching anything.
pub trait Store: Send + Sync + 'static {
    /// Replaces the file at `key` with `bytes`; readers see the old content or the new,
    /// never a part.
    fn put(&self, key: &str, bytes: Bytes, durability: Durability)
        -> BoxFuture<'_, io::Result<()>>;

    /// The bytes of `range` (fewer when the file ends first).
    fn read_range(&self, key: &str, range: Range<u64>) -> BoxFuture<'_, io::Result<Bytes>>;

    /// The whole file.
    fn read(&self, key: &str) -> BoxFuture<'_, io::Result<Bytes>>;

    /// The keys of the files under the folder `prefix`, sorted; none when it does not exist.
    fn list(&self, prefix: &str) -> BoxFuture<'_, io::Result<Vec<String>>>;

    /// Removes the file at `key`; a missing file is not an error.
    fn delete(&self, key: &str) -> BoxFuture<'_, io::Result<()>>;

    /// Removes every file under the folder `prefix`; a missing folder is not an error.
    fn delete_prefix(&self, prefix: &str) -> BoxFuture<'_, io::Result<()>>;
}

/// The error for a key that fails [`layout::is_valid_key`].
pub fn invalid_key(key: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("invalid key {key:?}"))
}
