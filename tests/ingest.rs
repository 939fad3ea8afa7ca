//! Black-box ingest tests: the real server on loopback, an independent RTMP client
//! (rml_rtmp) publishing the OBS-like fixture, players, refusals and abuse.

mod common;

use common::*;
use reelay::client::{ClientError, RtmpClient};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_play_states_and_session() {
    publish_play_check(start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_play_with_event_driven_ingest() {
    publish_play_check(start_with(|c| c.rtmp.ingest_batch_ms = 0).await).await;
}

async fn publish_play_check(t: TestServer) {
    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    assert_eq!(t.state_of(&id).await, "created");

    // Nobody can play a stream that is not live.
    let mut early = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    assert!(matches!(
        early.play(&name).await,
        Err(ClientError::Refused(_))
    ));

    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    t.wait_state(&id, "live").await;

    let mut player = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    player.play(&name).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Ok(Some(media)) = player.next_media().await {
            got.push(media);
        }
        got
    });

    let tags = fixture_tags();
    send_tags(&mut publisher, &tags, 1.0).await;
    publisher.stop_publishing().await.unwrap();
    t.wait_state(&id, "ended").await;

    let got = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();
    // The player receives the sequence headers first, then every frame in order, unchanged.
    // (Script data goes as metadata; the AVC end-of-sequence tag is not a frame.)
    let sent: Vec<_> = tags
        .iter()
        .filter(|t| t.tag_type != 18 && !(t.tag_type == 9 && t.body[1] == 2))
        .collect();
    // Both fixture codecs (AVC, AAC) mark sequence headers with packet type 0 in byte 1.
    let is_header = |t: &&&reelay::flv::file::FlvTag| t.body[1] == 0;
    let headers: Vec<_> = sent.iter().filter(is_header).collect();
    let frames: Vec<_> = sent.iter().filter(|t| !is_header(t)).collect();
    assert_eq!(
        got.len(),
        headers.len() + frames.len(),
        "every packet arrives"
    );
    for header in &headers {
        assert!(got[..2].iter().any(|g| g.body == header.body));
    }
    for (g, s) in got[2..].iter().zip(&frames) {
        assert_eq!((g.tag_type, g.timestamp_ms), (s.tag_type, s.timestamp_ms));
        assert_eq!(g.body, s.body);
    }

    let sessions = t.sessions(&id).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["app"], "live");
    assert_eq!(sessions[0]["end_reason"], "client_closed");
    assert!(sessions[0]["ended_at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_starts_at_a_keyframe_with_headers() {
    let t = start().await;
    let stream = t.create_stream().await;
    let name = streamname(&stream);
    let mut publisher = RtmpClient::connect(t.rtmp(), "rec").await.unwrap();
    publisher
        .publish(stream["id"].as_str().unwrap())
        .await
        .unwrap();
    let tags = fixture_tags();
    // 3 s of media, then a player joins.
    let (first, rest) = tags.split_at(tags.iter().position(|t| t.timestamp_ms > 3000).unwrap());
    send_tags(&mut publisher, first, 0.0).await;
    // Ingest reads on a shared grid (50 ms): let the server take in the burst before joining.
    let hub = t
        .server
        .sessions
        .get(uuid::Uuid::parse_str(stream["id"].as_str().unwrap()).unwrap())
        .unwrap()
        .hub
        .clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let configured = |hub: &reelay::hub::StreamHub| {
        hub.newest_access_point()
            .0
            .is_some_and(|p| p.config.generation >= 2)
    };
    while hub.ring_usage().0 < 60 || !configured(&hub) {
        assert!(std::time::Instant::now() < deadline, "ingest stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut player = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    player.play(&name).await.unwrap();
    let video_header = tags
        .iter()
        .find(|t| t.tag_type == 9 && t.body[1] == 0)
        .unwrap();
    let audio_header = tags
        .iter()
        .find(|t| t.tag_type == 8 && t.body[1] == 0)
        .unwrap();
    let one = player.next_media().await.unwrap().unwrap();
    let two = player.next_media().await.unwrap().unwrap();
    assert_eq!(one.body, video_header.body);
    assert_eq!(two.body, audio_header.body);
    let three = player.next_media().await.unwrap().unwrap();
    assert_eq!(three.tag_type, 9);
    assert_eq!(three.body[0] >> 4, 1, "first frame is a keyframe");
    assert!(
        three.timestamp_ms >= 2000 && three.timestamp_ms < 2100,
        "GOP at 2 s"
    );
    send_tags(&mut publisher, rest, 0.0).await;
    publisher.stop_publishing().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_close_the_connection_and_keep_the_server_up() {
    let t = start().await;
    let stream = t.create_stream().await;
    let name = streamname(&stream);

    // Unknown app.
    match RtmpClient::connect(t.rtmp(), "vod").await {
        Err(ClientError::Refused(_)) | Err(ClientError::Closed) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("unknown app accepted"),
    }
    // Unknown key.
    let mut c = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    assert!(
        matches!(c.publish("nope-nope").await, Err(ClientError::Refused(code)) if code == "NetStream.Publish.BadName")
    );
    // Keys are case-sensitive.
    let mut c = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    assert!(c.publish(&name.to_lowercase()).await.is_err() || name == name.to_lowercase());

    // A second publisher for a stream that has one.
    let mut first = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    first.publish(&name).await.unwrap();
    let mut second = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    assert!(matches!(
        second.publish(&name).await,
        Err(ClientError::Refused(_))
    ));
    // The refused one is disconnected.
    assert!(matches!(second.next_media().await, Ok(None)));
    first.stop_publishing().await.unwrap();
    let id = stream["id"].as_str().unwrap().to_string();
    t.wait_state(&id, "ended").await;

    // Locked and deleted streams.
    for state in ["locked", "deleted"] {
        t.sql()
            .execute(
                "UPDATE streams SET state = ?1 WHERE id = ?2",
                rusqlite::params![state, id],
            )
            .unwrap();
        let mut c = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
        assert!(
            matches!(c.publish(&name).await, Err(ClientError::Refused(code)) if code == "NetStream.Publish.Denied"),
            "{state}"
        );
    }
    assert_eq!(t.sessions(&id).await.len(), 1, "refusals open no session");
    let (status, _) = t.get("/health").await;
    assert_eq!(status, 200);
}

async fn expect_disconnect(t: &TestServer, bytes: &[u8]) {
    let mut socket = TcpStream::connect(t.rtmp()).await.unwrap();
    socket.write_all(bytes).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "server did not close a bad connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_disconnected_and_others_continue() {
    let t = start_with(|c| {
        c.rtmp.handshake_timeout_secs = 1;
        c.rtmp.read_timeout_secs = 2;
        c.recording.reconnect_grace_secs = 1;
    })
    .await;
    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    let mut player = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    player.play(&name).await.unwrap();
    let tags = fixture_tags();
    send_tags(&mut publisher, &tags[..10], 0.0).await;

    // Random bytes (bad version byte), a truncated handshake, garbage after the handshake.
    let random: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    expect_disconnect(&t, &random).await;
    let mut truncated = vec![3u8];
    truncated.extend(std::iter::repeat_n(0u8, 700));
    expect_disconnect(&t, &truncated).await;
    send_tags(&mut publisher, &tags[10..20], 0.0).await;
    let mut garbage = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    garbage.send_raw(&[0xC5; 64]).await.unwrap(); // type-3 chunk on a stream with no header
    assert!(matches!(garbage.next_media().await, Ok(None)));

    // Meanwhile the good stream flows to its player.
    send_tags(&mut publisher, &tags[20..60], 0.0).await;
    let media = tokio::time::timeout(Duration::from_secs(5), player.next_media())
        .await
        .unwrap()
        .unwrap();
    assert!(media.is_some());
    assert_eq!(t.state_of(&id).await, "live");

    // A publisher that vanishes ends its session once the reconnect grace has passed; the
    // catalog is left consistent.
    drop(publisher);
    t.wait_state(&id, "ended").await;
    let sessions = t.sessions(&id).await;
    assert!(sessions[0]["ended_at"].is_string());
    let reason = sessions[0]["end_reason"].as_str().unwrap();
    assert!(reason == "client_closed" || reason == "timeout", "{reason}");
    let (status, _) = t.get("/health").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_publisher_times_out() {
    let t = start_with(|c| c.rtmp.read_timeout_secs = 1).await;
    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&streamname(&stream)).await.unwrap();
    t.wait_state(&id, "live").await;
    // Keep the socket open but send nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    t.wait_state(&id, "ended").await;
    assert_eq!(t.sessions(&id).await[0]["end_reason"], "timeout");
    drop(publisher);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_closes_sessions() {
    let t = start().await;
    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&streamname(&stream)).await.unwrap();
    t.wait_state(&id, "live").await;
    let catalog = t.server.catalog.clone();
    t.server.begin_shutdown();
    let TestServer { server, dir, .. } = t;
    tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("shutdown finishes");
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let sessions = catalog.list_sessions(uuid).await.unwrap();
    assert_eq!(sessions[0].end_reason.as_deref(), Some("shutdown"));
    drop(publisher);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_refuses_extra_connections() {
    let t = start_with(|c| c.rtmp.max_connections = 2).await;
    let _a = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    let _b = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    assert!(RtmpClient::connect(t.rtmp(), "live").await.is_err());
    drop(_a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(RtmpClient::connect(t.rtmp(), "live").await.is_ok());
}

/// The fixture repeated `laps` times with continuous timestamps (headers once).
fn looped_tags(laps: u32) -> Vec<reelay::flv::file::FlvTag> {
    let tags = fixture_tags();
    let span = tags.last().unwrap().timestamp_ms + 33;
    let mut out = Vec::new();
    for lap in 0..laps {
        for tag in &tags {
            let is_header = tag.tag_type == 18 || tag.body[1] == 0 || tag.body[1] == 2;
            if lap > 0 && is_header {
                continue;
            }
            out.push(reelay::flv::file::FlvTag {
                tag_type: tag.tag_type,
                timestamp_ms: tag.timestamp_ms + lap * span,
                body: tag.body.clone(),
            });
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_that_does_not_read_never_slows_the_publisher() {
    let t = start_with(|c| c.rtmp.write_timeout_secs = 2).await;
    let stream = t.create_stream().await;
    let id = uuid::Uuid::parse_str(stream["id"].as_str().unwrap()).unwrap();
    let name = streamname(&stream);
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    // A stuck viewer: plays, then never reads its socket.
    let stuck = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    let stuck_socket = stuck.into_play_socket(&name).await.unwrap();
    // A lossless reader inside the server checks that ingest delivers every packet.
    let hub = t.server.sessions.get(id).unwrap().hub.clone();
    let mut recorder = hub.subscribe(reelay::hub::Delivery::Lossless);

    // 2 minutes of media (~9 MB), as fast as the publisher can send it.
    let tags = looped_tags(20);
    let media = tags
        .iter()
        .filter(|t| t.tag_type != 18 && t.body[1] != 0 && !(t.tag_type == 9 && t.body[1] == 2))
        .count();
    let started = std::time::Instant::now();
    let reader = tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            match recorder.next().await {
                reelay::hub::Event::Item(_) => n += 1,
                reelay::hub::Event::Ended => return n,
                gap => panic!("lossless reader lost data after {n} packets: {gap:?}"),
            }
        }
    });
    send_tags(&mut publisher, &tags, 0.0).await;
    let push_time = started.elapsed();
    // Meanwhile the stuck player was skipped forward (and eventually dropped).
    assert!(hub.dropped_items.load(std::sync::atomic::Ordering::Relaxed) > 0);
    publisher.stop_publishing().await.unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivered, media, "the lossless reader got every packet");
    assert!(
        push_time < Duration::from_secs(20),
        "publisher stalled: {push_time:?}"
    );
    drop(stuck_socket);
}
