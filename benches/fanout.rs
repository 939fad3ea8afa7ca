//! Hub fan-out: the cost of one packet pushed by the publisher and read by N readers
//! (1, 10, 100, 1000), and of the push alone with N readers attached (ingest must not slow
//! down with more readers). Reported per packet.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use reelay::hub::{Delivery, Event, Publisher, RingLimits};
use reelay::media::{CodecConfig, Packet, Track};
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let config = Arc::new(CodecConfig::default());
    let body = Bytes::from(vec![0u8; 4000]);
    let mut frame = 0i64;
    let mut next_packet = move || {
        frame += 1;
        Packet {
            track: Track::Video,
            dts_ms: frame * 33,
            cts_ms: 0,
            is_key: frame % 60 == 0,
            config: config.clone(),
            flv_body: body.clone(),
            payload_offset: 5,
            rtmp_chunks: Default::default(),
        }
    };

    let mut group = c.benchmark_group("hub_fanout");
    group.throughput(Throughput::Elements(1));
    for readers in [1usize, 10, 100, 1000] {
        let publisher = Publisher::<Packet>::new(RingLimits::default());
        publisher.push(next_packet());
        let mut subs: Vec<_> = (0..readers)
            .map(|_| publisher.hub().subscribe(Delivery::Lossy))
            .collect();
        group.bench_with_input(
            BenchmarkId::new("push_and_every_reader_reads", readers),
            &readers,
            |b, _| {
                b.iter(|| {
                    publisher.push(next_packet());
                    for sub in subs.iter_mut() {
                        while let Some(Event::Item(_)) = sub.try_next() {}
                    }
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("push_only", readers), &readers, |b, _| {
            b.iter(|| publisher.push(next_packet()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
