//! One RTMP connection: handshake and connect under a deadline, then admission — a publish
//! or a play asks the live-session registry (`session`), which answers with a publish
//! handle, a hub to read, or a [`Refusal`] — then the publish loop ([`super::publish`]) or
//! the play loop ([`super::play`]). Each connection logs one line when it ends, naming the
//! peer and the reason; refusals are also counted by reason in `/metrics`.

use super::context::RtmpContext;
use super::io::{is_disconnect, Io, Outcome};
use super::play::{self, PlayState};
use super::protocol::ProtocolEvent;
use super::publish::{self, PublishState};
use crate::catalog::App;
use crate::session::Refusal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Serves one accepted socket to its end.
pub async fn run(ctx: Arc<RtmpContext>, socket: TcpStream, peer: SocketAddr) {
    let write_timeout = Duration::from_secs(ctx.settings.write_timeout_secs);
    let mut io = Io::new(socket, peer, write_timeout, ctx.media.clone());
    let outcome = serve(&ctx, &mut io).await;
    let received = io.proto.bytes_received();
    match &outcome {
        Outcome::Closed
        | Outcome::Unpublished
        | Outcome::StreamEnded
        | Outcome::Shutdown
        | Outcome::Stopped => {
            tracing::info!(%peer, bytes_in = received, reason = %outcome, "rtmp connection closed")
        }
        Outcome::Io(e) if is_disconnect(e) => {
            tracing::info!(%peer, bytes_in = received, reason = %outcome, "rtmp connection closed")
        }
        Outcome::Refused { request, refusal } => {
            ctx.media.refused(refusal.label());
            tracing::warn!(%peer, %request, reason = %refusal, "rtmp connection refused")
        }
        _ => {
            tracing::warn!(%peer, bytes_in = received, reason = %outcome, "rtmp connection closed")
        }
    }
}

async fn serve(ctx: &Arc<RtmpContext>, io: &mut Io) -> Outcome {
    let deadline = Duration::from_secs(ctx.settings.handshake_timeout_secs);
    let setup = tokio::select! {
        _ = ctx.shutdown.cancelled() => return Outcome::Shutdown,
        setup = tokio::time::timeout(deadline, setup(ctx, io)) => setup,
    };
    match setup {
        Err(_) => Outcome::Timeout("handshake/connect"),
        Ok(Err(outcome)) => outcome,
        Ok(Ok(Role::Publish(state))) => publish::run(ctx, io, state).await,
        Ok(Ok(Role::Play(state))) => play::run(ctx, io, state).await,
    }
}

enum Role {
    Publish(PublishState),
    Play(PlayState),
}

/// Handshake, connect and admission, until the client publishes or plays.
async fn setup(ctx: &Arc<RtmpContext>, io: &mut Io) -> Result<Role, Outcome> {
    let mut app: Option<App> = None;
    loop {
        while let Some(event) = io.proto.poll_event()? {
            match event {
                ProtocolEvent::Connect { app: requested, .. } => match App::from_name(&requested) {
                    Some(known) => {
                        io.proto.accept_connect();
                        app = Some(known);
                    }
                    None => {
                        io.proto
                            .reject_connect(&format!("unknown application {requested:?}"));
                        let request = format!("connect {requested:?}");
                        return Err(io.refuse(request, Refusal::UnknownApp(requested)).await);
                    }
                },
                ProtocolEvent::Publish { stream_id, key, .. } => {
                    let app = app.unwrap_or(App::Live);
                    return admit_publisher(ctx, io, stream_id, key, app).await;
                }
                ProtocolEvent::Play { stream_id, key } => {
                    return admit_player(ctx, io, stream_id, key).await;
                }
                ProtocolEvent::Media { .. } | ProtocolEvent::StreamClosed { .. } => {}
            }
        }
        io.flush().await?;
        if !io.read_some().await? {
            return Err(Outcome::Closed);
        }
    }
}

/// The RTMP status code a refused publish gets.
fn publish_status(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::UnknownKey | Refusal::AlreadyPublishing => "NetStream.Publish.BadName",
        _ => "NetStream.Publish.Denied",
    }
}

async fn admit_publisher(
    ctx: &Arc<RtmpContext>,
    io: &mut Io,
    stream_id: u32,
    key: String,
    app: App,
) -> Result<Role, Outcome> {
    match ctx.sessions.begin_publish(&key, app).await {
        Ok(publishing) => {
            io.proto.accept_publish(stream_id, &key);
            let session = publishing.session();
            tracing::info!(peer = %io.peer, stream = %session.stream.streamname, session = %session.session_id, app = app.as_str(), resumed = publishing.continues_generation().is_some(), "publishing started");
            Ok(Role::Publish(PublishState {
                stream_id,
                publishing,
            }))
        }
        Err(refusal) => {
            io.proto
                .reject_publish(stream_id, publish_status(&refusal), &refusal.to_string());
            Err(io.refuse(format!("publish {key:?}"), refusal).await)
        }
    }
}

async fn admit_player(
    ctx: &Arc<RtmpContext>,
    io: &mut Io,
    stream_id: u32,
    key: String,
) -> Result<Role, Outcome> {
    match ctx.sessions.player_hub(&key).await {
        Ok((stream, hub)) => {
            io.proto.accept_play(stream_id, &key);
            Ok(Role::Play(PlayState {
                stream,
                stream_id,
                hub,
            }))
        }
        Err(refusal) => {
            io.proto.reject_play(stream_id, &refusal.to_string());
            Err(io.refuse(format!("play {key:?}"), refusal).await)
        }
    }
}
