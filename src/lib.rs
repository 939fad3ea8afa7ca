//! reelay: a single-binary RTMP media server with built-in live processing.
//!
//! One media path carries every stream:
//!
//! ```text
//! TCP → rtmp (handshake, chunk stream, commands) → flv (tag bodies → packets)
//!     → hub (one per live stream: ring of packets + codec config + notify)
//!     → readers, each with its own cursor (RTMP players now; recorder, replay,
//!       thumbnails and motion clips later)
//! ```
//!
//! Ingest never waits on a reader: [`hub::Publisher::push`] is synchronous and its cost does
//! not depend on how slow any reader is. The SQLite [`catalog`] is the single source of truth
//! for organisations, keys, streams and sessions; [`http`] serves the bintu-shaped API on it.
//!
//! Module map: [`config`] (settings), [`amf0`], [`media`] (packets, codec configs),
//! [`flv`], [`rtmp`], [`hub`], [`catalog`], [`http`], [`server`] (wiring and shutdown).

pub mod amf0;
pub mod catalog;
pub mod client;
pub mod config;
pub mod flv;
pub mod hls;
pub mod http;
pub mod hub;
pub mod media;
pub mod metrics;
pub mod mux;
pub mod picture;
pub mod processing;
pub mod rtmp;
pub mod server;
pub mod session;
pub mod sinks;
pub mod status;
pub mod storage;
