use super::*;
use crate::media::{CodecConfig, Track};
use bytes::Bytes;

fn packet(track: Track, dts_ms: i64, is_key: bool, size: usize) -> Packet {
    Packet {
        track,
        dts_ms,
        cts_ms: 0,
        is_key,
        config: Arc::new(CodecConfig::default()),
        flv_body: Bytes::from(vec![0u8; size]),
        payload_offset: 0,
        rtmp_chunks: Default::default(),
    }
}

/// Pushes `seconds` of 30 fps video with a keyframe every `gop` frames.
fn push_video(publisher: &Publisher, from_frame: i64, frames: i64, gop: i64) {
    for f in from_frame..from_frame + frames {
        publisher.push(packet(Track::Video, f * 33, f % gop == 0, 1000));
    }
}

fn next_dts(sub: &mut Subscription) -> Option<i64> {
    match sub.try_next() {
        Some(Event::Item(p)) => Some(p.dts_ms),
        _ => None,
    }
}

#[test]
fn new_reader_starts_at_the_last_keyframe() {
    let publisher = Publisher::<Packet>::new(RingLimits::default());
    push_video(&publisher, 0, 100, 30); // keyframes at 0, 30, 60, 90
    let mut sub = publisher.hub().subscribe(Delivery::Lossy);
    assert_eq!(next_dts(&mut sub), Some(90 * 33));
    let (held, _) = publisher.hub().ring_usage();
    assert!(held >= 10, "the last GOP stays in the ring");
}

#[test]
fn lossless_reader_gets_every_packet_in_order() {
    let publisher = Publisher::<Packet>::new(RingLimits::default());
    publisher.push(packet(Track::Video, 0, true, 10));
    let mut sub = publisher.hub().subscribe(Delivery::Lossless);
    push_video(&publisher, 1, 299, 30);
    let mut seen = Vec::new();
    while let Some(dts) = next_dts(&mut sub) {
        seen.push(dts);
    }
    assert_eq!(seen.len(), 300);
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 33));
    drop(publisher);
    assert!(matches!(sub.try_next(), Some(Event::Ended)));
}

#[test]
fn lossy_reader_behind_skips_to_newest_keyframe() {
    let publisher = Publisher::<Packet>::new(RingLimits::default());
    publisher.push(packet(Track::Video, 0, true, 10));
    let mut sub = publisher.hub().subscribe(Delivery::Lossy);
    push_video(&publisher, 1, 299, 30); // 10 s later, the reader has read nothing
    match sub.try_next() {
        Some(Event::Gap { missed }) => assert!(missed > 200, "missed {missed}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(next_dts(&mut sub), Some(270 * 33));
    assert!(publisher.hub().dropped_items.load(Ordering::Relaxed) > 200);
}

#[test]
fn lossy_reader_lagging_inside_the_ring_skips_after_max_lag() {
    let limits = RingLimits {
        lossy_max_lag_ms: 1000,
        ..RingLimits::default()
    };
    let publisher = Publisher::<Packet>::new(limits);
    // A lossless reader holds the ring, so the lossy one is not pushed out of it.
    publisher.push(packet(Track::Video, 0, true, 10));
    let _recorder = publisher.hub().subscribe(Delivery::Lossless);
    let mut player = publisher.hub().subscribe(Delivery::Lossy);
    push_video(&publisher, 1, 100, 30);
    assert!(matches!(player.try_next(), Some(Event::Gap { .. })));
    assert_eq!(next_dts(&mut player), Some(90 * 33));
}

#[test]
fn lossless_backlog_cap_makes_an_explicit_gap() {
    let limits = RingLimits {
        max_backlog_bytes: 50_000,
        ..RingLimits::default()
    };
    let publisher = Publisher::<Packet>::new(limits);
    publisher.push(packet(Track::Video, 0, true, 1000));
    let mut slow = publisher.hub().subscribe(Delivery::Lossless);
    push_video(&publisher, 1, 199, 30);
    let (_, bytes) = publisher.hub().ring_usage();
    assert!(bytes <= 50_000, "ring held {bytes} bytes");
    assert!(matches!(slow.try_next(), Some(Event::Gap { .. })));
    let resumed = next_dts(&mut slow).unwrap();
    assert_eq!(resumed % (30 * 33), 0, "resumes at a keyframe");
}

#[test]
fn audio_only_streams_keep_a_window() {
    let publisher = Publisher::<Packet>::new(RingLimits::default());
    publisher.push(packet(Track::Audio, 0, true, 10));
    let mut sub = publisher.hub().subscribe(Delivery::Lossy);
    for i in 1..40 {
        publisher.push(packet(Track::Audio, i * 21, true, 10));
    }
    // 40 frames of 21 ms < min_keep_ms: nothing was skipped.
    let mut count = 0;
    while next_dts(&mut sub).is_some() {
        count += 1;
    }
    assert_eq!(count, 40);
}

#[tokio::test]
async fn waiting_reader_wakes_on_push_and_on_end() {
    let publisher = Publisher::<Packet>::new(RingLimits::default());
    let mut sub = publisher.hub().subscribe(Delivery::Lossy);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        loop {
            match sub.next().await {
                Event::Item(p) => got.push(p.dts_ms),
                Event::Ended => return got,
                Event::Gap { .. } => {}
            }
        }
    });
    for i in 0..50 {
        publisher.push(packet(Track::Video, i * 33, i == 0, 10));
        tokio::task::yield_now().await;
    }
    drop(publisher);
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 50);
}

#[test]
fn backlog_age_cap_is_wall_clock_not_media_time() {
    let limits = RingLimits {
        max_backlog_ms: 1000,
        ..RingLimits::default()
    };
    let start = std::time::Instant::now();
    let mut ring = ring::Ring::<Packet>::new(limits);
    ring.lossless_cursors.insert(0, 0);
    // 60 s of media arriving at once (a file pushed faster than real time): all kept.
    for f in 0..1800 {
        ring.push(packet(Track::Video, f * 33, f % 60 == 0, 100), start);
    }
    assert_eq!(ring.items.len(), 1800);
    // 2 s later the reader still has not moved: the old GOPs go, the last GOP stays.
    let later = start + std::time::Duration::from_secs(2);
    ring.push(packet(Track::Video, 1800 * 33, true, 100), later);
    assert!(ring.base_seq > 0);
    assert!(ring.items.len() <= 61, "{}", ring.items.len());
    let (event, _) = ring.read(0, Delivery::Lossless);
    assert!(matches!(event, Some(Event::Gap { .. })));
}

#[test]
fn a_resumed_publisher_continues_the_timeline_after_the_last_presented_frame() {
    let publisher = Publisher::<Packet>::new(RingLimits::default());
    let mut sub = publisher.hub().subscribe(Delivery::Lossless);
    push_video(&publisher, 0, 90, 30); // dts 0..=2937, 33 ms steps
    let mut b_frame = packet(Track::Video, 90 * 33, false, 10);
    b_frame.cts_ms = 66;
    publisher.push(b_frame); // presented at 3036
                             // The reconnected publisher starts its clock at 0 again.
    publisher.resume();
    publisher.push(packet(Track::Video, 0, true, 10));
    publisher.push(packet(Track::Video, 33, false, 10));
    let mut seen = Vec::new();
    while let Some(dts) = next_dts(&mut sub) {
        seen.push(dts);
    }
    let resumed = seen[seen.len() - 2];
    assert_eq!(
        resumed,
        90 * 33 + 66 + 33,
        "after the B-frame's presentation + a frame"
    );
    assert_eq!(seen[seen.len() - 1], resumed + 33);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

/// A CMAF-chunk-like item: independent chunks are where readers start, no timeline.
#[derive(Debug)]
struct Chunk {
    at_ms: i64,
    independent: bool,
}

impl RingItem for Chunk {
    type Timeline = ();
    fn place(&mut self, _: &mut ()) {}
    fn access(&self) -> Access {
        if self.independent {
            Access::Strong
        } else {
            Access::None
        }
    }
    fn time_ms(&self) -> i64 {
        self.at_ms
    }
    fn size(&self) -> usize {
        1000
    }
}

#[test]
fn the_ring_gives_any_item_the_same_rules() {
    let limits = RingLimits {
        lossy_max_lag_ms: 1000,
        ..RingLimits::default()
    };
    let publisher = Publisher::<Chunk>::new(limits);
    // An independent chunk every 2 s, a chunk every 200 ms.
    let push = |from: i64, to: i64| {
        for i in from..to {
            publisher.push(Chunk {
                at_ms: i * 200,
                independent: i % 10 == 0,
            });
        }
    };
    push(0, 5);
    let mut lossless = publisher.hub().subscribe(Delivery::Lossless);
    let mut lossy = publisher.hub().subscribe(Delivery::Lossy);
    push(5, 35); // 7 s
                 // The lossy reader, 6.8 s behind, skips the 30 chunks before the newest independent one.
    assert!(matches!(lossy.try_next(), Some(Event::Gap { missed: 30 })));
    match lossy.try_next() {
        Some(Event::Item(chunk)) => assert_eq!((chunk.at_ms, chunk.independent), (6000, true)),
        other => panic!("{other:?}"),
    }
    // The lossless reader gets every chunk from where it joined.
    let mut seen = 0;
    while let Some(Event::Item(_)) = lossless.try_next() {
        seen += 1;
    }
    assert_eq!(seen, 35);
    // A new reader starts at the newest independent chunk at once.
    let mut late = publisher.hub().subscribe(Delivery::Lossy);
    assert!(matches!(late.try_next(), Some(Event::Item(c)) if c.at_ms == 6000));
}

#[tokio::test]
async fn access_point_waiters_wake_only_for_access_points_and_the_end() {
    let publisher = Publisher::<Packet>::new(RingLimits::default());
    let hub = publisher.hub().clone();
    let waiter = tokio::spawn(async move {
        let first = hub.wait_access_point(|p| p.track == Track::Video).await;
        let after = first.as_ref().map(|p| p.dts_ms);
        let second = hub
            .wait_access_point(|p| p.track == Track::Video && Some(p.dts_ms) != after)
            .await;
        let third = hub.wait_access_point(|_| false).await;
        (after, second.map(|p| p.dts_ms), third.is_none())
    });
    tokio::task::yield_now().await;
    publisher.push(packet(Track::Audio, 0, true, 10)); // audio: not wanted
    publisher.push(packet(Track::Video, 10, true, 10));
    tokio::task::yield_now().await;
    publisher.push(packet(Track::Video, 43, false, 10));
    publisher.push(packet(Track::Video, 76, true, 10));
    tokio::task::yield_now().await;
    drop(publisher);
    let (first, second, ended) = waiter.await.unwrap();
    assert_eq!((first, second, ended), (Some(10), Some(76), true));
}
