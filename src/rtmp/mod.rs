//! RTMP ingest and play: the listener, one task per connection, admission through the
//! live-session registry (`session`), publishing into a hub and playing out of one.
//!
//! Layers: [`chunk`] (chunk stream codec, sans-IO) → [`protocol`] (handshake and commands,
//! sans-IO) → [`io`] (the socket; why a connection ended) → [`connection`] (deadlines,
//! admission) → `publish` / `play` (the loops) → [`listener`] (accept loop with a connection
//! limit and backoff); [`context`] is what they all share.

pub mod chunk;
pub mod connection;
pub mod context;
pub mod io;
pub mod listener;
mod play;
pub mod protocol;
mod publish;

pub use context::RtmpContext;
pub use listener::serve;
