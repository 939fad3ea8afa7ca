//! RTMP ingest and play: the listener, one task per connection, publish admission against
//! the catalog, publishing into a hub and playing out of one.
//!
//! Layers: [`chunk`] (chunk stream codec, sans-IO) → [`protocol`] (handshake and commands,
//! sans-IO) → [`connection`] (the async task: deadlines, admission, publish and play loops)
//! → [`listener`] (accept loop with a connection limit and backoff).

pub mod chunk;
pub mod connection;
pub mod listener;
pub mod protocol;

pub use listener::{serve, RtmpContext};
