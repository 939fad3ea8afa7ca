//! A minimal RTMP client built on `rml_rtmp`'s `ClientSession`: an independent implementation
//! of the protocol, used by the integration tests, the load generator and the benches to
//! publish and play against reelay. The server itself never uses it.

use crate::flv::file::FlvTag;
use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
    PublishRequestType, StreamMetadata,
};
use rml_rtmp::time::RtmpTimestamp;
use std::collections::VecDeque;
use std::net::SocketAddr;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What went wrong on the client side.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("rtmp: {0}")]
    Rtmp(String),
    #[error("refused by the server: {0}")]
    Refused(String),
    #[error("connection closed by the server")]
    Closed,
}

fn rtmp_err(e: impl std::fmt::Debug) -> ClientError {
    ClientError::Rtmp(format!("{e:?}"))
}

/// Media received by a player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMedia {
    /// 8 audio, 9 video.
    pub tag_type: u8,
    pub timestamp_ms: u32,
    pub body: Bytes,
}

/// One RTMP client connection.
pub struct RtmpClient {
    socket: TcpStream,
    session: ClientSession,
    events: VecDeque<ClientSessionEvent>,
    buf: Vec<u8>,
}

impl RtmpClient {
    /// Connects, handshakes and sends `connect(app)`; waits for the answer.
    pub async fn connect(addr: SocketAddr, app: &str) -> Result<Self, ClientError> {
        let mut socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        let mut handshake = Handshake::new(PeerType::Client);
        let c0c1 = handshake.generate_outbound_p0_and_p1().map_err(rtmp_err)?;
        socket.write_all(&c0c1).await?;
        let mut buf = vec![0u8; 8192];
        let leftover = loop {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            match handshake.process_bytes(&buf[..n]).map_err(rtmp_err)? {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    socket.write_all(&response_bytes).await?;
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    socket.write_all(&response_bytes).await?;
                    break remaining_bytes;
                }
            }
        };
        let (session, initial) =
            ClientSession::new(ClientSessionConfig::new()).map_err(rtmp_err)?;
        let mut client = RtmpClient {
            socket,
            session,
            events: VecDeque::new(),
            buf,
        };
        client.handle_results(initial).await?;
        if !leftover.is_empty() {
            let results = client.session.handle_input(&leftover).map_err(rtmp_err)?;
            client.handle_results(results).await?;
        }
        let request = client
            .session
            .request_connection(app.to_string())
            .map_err(rtmp_err)?;
        client.handle_results(vec![request]).await?;
        client
            .wait_for(|e| match e {
                ClientSessionEvent::ConnectionRequestAccepted => Some(Ok(())),
                ClientSessionEvent::ConnectionRequestRejected { description } => {
                    Some(Err(ClientError::Refused(description.clone())))
                }
                _ => None,
            })
            .await?;
        Ok(client)
    }

    async fn handle_results(
        &mut self,
        results: Vec<ClientSessionResult>,
    ) -> Result<(), ClientError> {
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => {
                    self.socket.write_all(&packet.bytes).await?;
                }
                ClientSessionResult::RaisedEvent(event) => self.events.push_back(event),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    /// Reads until `pick` returns a verdict for an event; other events stay queued.
    async fn wait_for<T>(
        &mut self,
        mut pick: impl FnMut(&ClientSessionEvent) -> Option<Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        loop {
            if let Some(pos) = self.events.iter().position(|e| pick(e).is_some()) {
                let event = self.events.remove(pos).ok_or(ClientError::Closed)?;
                return pick(&event).ok_or(ClientError::Closed)?;
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> Result<(), ClientError> {
        let n = self.socket.read(&mut self.buf).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        let input = self.buf[..n].to_vec();
        let results = self.session.handle_input(&input).map_err(rtmp_err)?;
        self.handle_results(results).await
    }

    fn status_error(event: &ClientSessionEvent) -> Option<ClientError> {
        match event {
            ClientSessionEvent::UnhandleableOnStatusCode { code }
                if [
                    ".BadName",
                    ".Denied",
                    ".StreamNotFound",
                    ".Failed",
                    ".Rejected",
                ]
                .iter()
                .any(|suffix| code.ends_with(suffix)) =>
            {
                Some(ClientError::Refused(code.clone()))
            }
            _ => None,
        }
    }

    /// Sends a publish or play request and waits until the server accepts or refuses it.
    async fn request(
        &mut self,
        request: ClientSessionResult,
        accepted: ClientSessionEvent,
    ) -> Result<(), ClientError> {
        self.handle_results(vec![request]).await?;
        self.wait_for(|e| {
            if *e == accepted {
                Some(Ok(()))
            } else {
                Self::status_error(e).map(Err)
            }
        })
        .await
    }

    /// Requests publishing `key` in live mode; waits for the answer.
    pub async fn publish(&mut self, key: &str) -> Result<(), ClientError> {
        let request = self
            .session
            .request_publishing(key.to_string(), PublishRequestType::Live)
            .map_err(rtmp_err)?;
        self.request(request, ClientSessionEvent::PublishRequestAccepted)
            .await
    }

    /// Requests playing `key`; waits for the answer.
    pub async fn play(&mut self, key: &str) -> Result<(), ClientError> {
        let request = self
            .session
            .request_playback(key.to_string())
            .map_err(rtmp_err)?;
        self.request(request, ClientSessionEvent::PlaybackRequestAccepted)
            .await
    }

    /// Sends one FLV tag (audio, video or script data as metadata) on the publishing stream.
    pub async fn send_tag(&mut self, tag: &FlvTag) -> Result<(), ClientError> {
        let ts = RtmpTimestamp::new(tag.timestamp_ms);
        let result = match tag.tag_type {
            8 => self.session.publish_audio_data(tag.body.clone(), ts, false),
            9 => self.session.publish_video_data(tag.body.clone(), ts, false),
            _ => {
                let mut metadata = StreamMetadata::new();
                metadata.encoder = Some("reelay test client".into());
                self.session.publish_metadata(&metadata)
            }
        }
        .map_err(rtmp_err)?;
        self.handle_results(vec![result]).await
    }

    /// Sends raw bytes (for protocol abuse tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.socket.write_all(bytes).await?;
        Ok(())
    }

    /// Ends publishing (deleteStream) and closes the connection gracefully: FIN, then drain
    /// until the server closes. (Closing with unread data makes the kernel send RST and drop
    /// whatever it had not sent yet.)
    pub async fn stop_publishing(mut self) -> Result<(), ClientError> {
        let results = self.session.stop_publishing().map_err(rtmp_err)?;
        self.handle_results(results).await?;
        self.socket.shutdown().await?;
        let drain = async {
            let mut sink = vec![0u8; 64 * 1024];
            while let Ok(n) = self.socket.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
        Ok(())
    }

    /// Requests playing `key` and hands back the raw socket once the server accepted, for
    /// load tests that count bytes instead of parsing them.
    pub async fn into_play_socket(mut self, key: &str) -> Result<TcpStream, ClientError> {
        self.play(key).await?;
        Ok(self.socket)
    }

    /// The next audio or video message a player receives; `None` when the stream ends.
    pub async fn next_media(&mut self) -> Result<Option<ReceivedMedia>, ClientError> {
        loop {
            while let Some(event) = self.events.pop_front() {
                match event {
                    ClientSessionEvent::VideoDataReceived { timestamp, data } => {
                        return Ok(Some(ReceivedMedia {
                            tag_type: 9,
                            timestamp_ms: timestamp.value,
                            body: data,
                        }))
                    }
                    ClientSessionEvent::AudioDataReceived { timestamp, data } => {
                        return Ok(Some(ReceivedMedia {
                            tag_type: 8,
                            timestamp_ms: timestamp.value,
                            body: data,
                        }))
                    }
                    ClientSessionEvent::UnhandleableOnStatusCode { code }
                        if code == "NetStream.Play.UnpublishNotify" =>
                    {
                        return Ok(None)
                    }
                    _ => {}
                }
            }
            match self.read_more().await {
                Ok(()) => {}
                Err(ClientError::Closed) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}
