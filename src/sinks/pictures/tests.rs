//! The tick schedule under paused (virtual) time.

use super::*;
use crate::hub::{Publisher, RingLimits};
use crate::media::CodecConfig;
use bytes::Bytes;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

fn keyframe(dts_ms: i64) -> Packet {
    Packet {
        track: Track::Video,
        dts_ms,
        cts_ms: 0,
        is_key: true,
        config: Arc::new(CodecConfig::default()),
        flv_body: Bytes::from_static(&[0; 16]),
        payload_offset: 0,
        rtmp_chunks: Default::default(),
    }
}

/// Pushes a keyframe every `every` seconds (of virtual time) until `until` seconds, then
/// ends the stream.
async fn publish(publisher: Publisher, every: u64, until: u64) {
    let mut at = 0;
    while at <= until {
        publisher.push(keyframe(i64::try_from(at * 1000).unwrap()));
        tokio::time::sleep(Duration::from_secs(every)).await;
        at += every;
    }
}

/// Runs the schedule with `work(seconds since start)` as each tick's job (returning how long
/// it runs and how much of that is collecting rather than decoding), and returns the
/// seconds at which ticks ran and the number of skipped ticks.
async fn schedule(
    every: u64,
    until: u64,
    interval: u64,
    work: impl Fn(u64) -> (u64, u64),
) -> (Vec<u64>, u32) {
    schedule_on_grid(every, until, interval, 0, work).await
}

/// `schedule` with the task's grid of ticks starting `phase` seconds after the start.
async fn schedule_on_grid(
    every: u64,
    until: u64,
    interval: u64,
    phase: u64,
    work: impl Fn(u64) -> (u64, u64),
) -> (Vec<u64>, u32) {
    let publisher = Publisher::<Packet>::new(RingLimits::default());
    let hub = publisher.hub().clone();
    let start = Instant::now();
    tokio::spawn(publish(publisher, every, until));
    let skipped = AtomicU32::new(0);
    let ticks = Mutex::new(Vec::new());
    let grid = TickGrid {
        origin: start + Duration::from_secs(phase),
        interval: Duration::from_secs(interval),
    };
    every_interval(
        &hub,
        grid,
        || {
            skipped.fetch_add(1, Ordering::Relaxed);
        },
        |_key, _deadline| {
            let at = start.elapsed().as_secs();
            ticks.lock().unwrap().push(at);
            let (runs, collecting) = work(at);
            async move {
                tokio::time::sleep(Duration::from_secs(collecting)).await;
                let busy_since = Instant::now();
                tokio::time::sleep(Duration::from_secs(runs - collecting)).await;
                Tick::Done { busy_since }
            }
        },
    )
    .await;
    (ticks.into_inner().unwrap(), skipped.into_inner())
}

#[tokio::test(start_paused = true)]
async fn first_at_the_first_keyframe_then_every_interval() {
    let (ticks, skipped) = schedule(2, 61, 10, |_| (1, 0)).await;
    assert_eq!(ticks, vec![0, 10, 20, 30, 40, 50, 60]);
    assert_eq!(skipped, 0);
}

#[tokio::test(start_paused = true)]
async fn waits_for_a_keyframe_newer_than_the_last_one() {
    // Keyframes every 15 s: a tick waits for the next one, the schedule keeps its grid.
    let (ticks, _) = schedule(15, 60, 10, |_| (1, 0)).await;
    assert_eq!(ticks, vec![0, 15, 30, 45, 60]);
}

#[tokio::test(start_paused = true)]
async fn ticks_lost_to_a_long_job_are_counted_as_skipped() {
    // The job at 10 s decodes for 25 s: the ticks at 20 and 30 s are lost.
    let (ticks, skipped) = schedule(1, 60, 10, |at| if at == 10 { (25, 0) } else { (1, 0) }).await;
    assert_eq!(ticks, vec![0, 10, 40, 50, 60]);
    assert_eq!(skipped, 2);
}

#[tokio::test(start_paused = true)]
async fn ticks_passing_while_a_clip_is_collected_are_not_skipped() {
    // A 25 s motion clip every 10 s: collecting is not lost work, clips run back to back.
    let (ticks, skipped) = schedule(1, 60, 10, |_| (26, 25)).await;
    assert_eq!(ticks, vec![0, 30, 60]);
    assert_eq!(skipped, 0);
}

#[tokio::test(start_paused = true)]
async fn after_the_first_tick_the_task_keeps_to_its_own_grid() {
    // Grid at 3 + 10k s: the first tick at the first keyframe, the second at least half an
    // interval later (13 s, not 3 s), then every interval.
    let (ticks, skipped) = schedule_on_grid(1, 45, 10, 3, |_| (1, 0)).await;
    assert_eq!(ticks, vec![0, 13, 23, 33, 43]);
    assert_eq!(skipped, 0);
    // Grid at 7 + 10k s: 7 s is already half an interval after the first tick.
    let (ticks, _) = schedule_on_grid(1, 30, 10, 7, |_| (1, 0)).await;
    assert_eq!(ticks, vec![0, 7, 17, 27]);
}

#[tokio::test(start_paused = true)]
async fn tasks_started_together_get_spread_phases_and_give_them_back() {
    let phases = TickPhases::new();
    let interval = Duration::from_secs(10);
    let offset = |slot: &PhaseSlot| slot.grid(interval).origin - phases.epoch;
    let slots: Vec<PhaseSlot> = (0..24)
        .map(|_| phases.claim(PictureKind::MotionClip))
        .collect();
    let mut offsets: Vec<Duration> = slots.iter().map(offset).collect();
    offsets.sort();
    // 24 tasks over 10 s: no two closer than a fifth of the even spacing, no gap wider
    // than twice it.
    let even = interval / 24;
    for pair in offsets.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap > even / 5 && gap < even * 2, "{offsets:?}");
    }
    assert!(interval - offsets[23] < even * 2, "{offsets:?}");
    // Kinds are spread separately; a freed index is taken again.
    assert_eq!(
        offset(&phases.claim(PictureKind::Thumbnail)),
        Duration::ZERO
    );
    let mut slots = slots;
    let freed = offset(&slots[5]);
    drop(slots.remove(5));
    assert_eq!(offset(&phases.claim(PictureKind::MotionClip)), freed);
    drop(slots);
    assert_eq!(
        offset(&phases.claim(PictureKind::MotionClip)),
        Duration::ZERO
    );
}

#[tokio::test(start_paused = true)]
async fn stops_when_the_stream_ends() {
    let (ticks, _) = schedule(1, 25, 10, |_| (1, 0)).await;
    assert_eq!(ticks, vec![0, 10, 20]);
}

#[tokio::test(start_paused = true)]
async fn a_clip_stops_collecting_when_video_stops_but_the_stream_goes_on() {
    let publisher = Publisher::<Packet>::new(RingLimits::default());
    let hub = publisher.hub().clone();
    publisher.push(keyframe(0));
    let started = Instant::now();
    let collecting =
        tokio::spawn(async move { crate::sinks::motionclip::collect(&hub, 3000).await });
    // Only audio from here on, for a minute.
    for at in 1..600 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        publisher.push(Packet {
            track: Track::Audio,
            is_key: true,
            ..keyframe(at * 100)
        });
        if collecting.is_finished() {
            break;
        }
    }
    let frames = collecting.await.unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(started.elapsed().as_secs(), 11, "3 s × 2 + 5 s");
}
