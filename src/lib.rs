//! reelay: a single-binary RTMP media server with built-in live processing.
//!
//! One media path carries every stream:
//!
//! ```text
//! TCP → rtmp (handshake, chunk stream, commands) → flv (tag bodies → packets)
//!     → hub (one per live stream: a ring of packets, readers with their own cursors)
//!     → sinks, each a reader:
//!          lossless: recorder (fMP4 → finalised MP4), replay (CMAF segments + playlist)
//!          lossy:    RTMP play, live HLS, thumbnails, motion clips (skip to a keyframe)
//! ```
//!
//! Ingest never waits on a reader: [`hub::Publisher::push`] is synchronous and its cost does
//! not depend on how slow any reader is. What one publish starts — its catalog session, its
//! hub, the sinks its settings ask for — is a [`session::LiveSession`], held in the one
//! registry of live streams; protocols ask it and never start sinks themselves. The
//! [`catalog`] is the single source of truth for organisations, keys, streams, sessions and
//! assets, reached through typed methods only; [`storage`] names every file and holds them.
//!
//! Module map:
//! - wire and media: [`rtmp`] (listener, connections, admission), [`amf0`], [`flv`],
//!   [`media`] (packets, codec configurations), [`hub`] (the per-stream ring, generic over
//!   its item);
//! - what a publish runs: [`session`] (live sessions and their registry), [`sinks`]
//!   (recorder, HLS, thumbnails, motion clips), [`transcode`] (a stream group's ABR
//!   renditions, published into their members' hubs), [`status`] (what each sink is doing),
//!   [`processing`] (typed per-stream settings);
//! - pure formats: [`mux`] (the one fMP4/CMAF muxer, finaliser, cutter), [`hls`]
//!   (segmenter, playlists, clip planning), [`picture`] (decode, convert, scale, GIF);
//! - state and files: [`catalog`] (SQLite behind typed async methods), [`storage`] (layout,
//!   `Store`, the local disk and its spool);
//! - the rest: [`http`] (API, file serving, dashboard), [`metrics`], [`config`], [`client`]
//!   (an independent RTMP client for tests and load generation), [`server`] (wiring,
//!   recovery at start, shutdown).

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
pub mod transcode;
