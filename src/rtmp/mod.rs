//! RTMP ingest and play: the listener, one task per connection, publish admission against
//! the catalog, publishing into a hub and playing out of one.
//!
//! Layers: [`chunk`] (chunk stream codec, sans-IO) → [`protocol`] (handshake and commands,
//! sans-IO) → [`connection`] (the socket, deadlines, admission) → `publish` / `play` (the
//! loops) → [`listener`] (accept loop with a connection limit and backoff).

pub mod chunk;
pub mod connection;
pub mod listener;
mod play;
pub mod protocol;
mod publish;
pub mod session;

pub use listener::{serve, RtmpContext};
