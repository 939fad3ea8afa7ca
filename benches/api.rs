//! API latency on a big catalog: `GET /stream/{id}` (with its newest 10 assets of each kind)
//! and `GET /stream` pages of 150 (plain, filtered by a tag, groups collapsed), over real
//! HTTP on loopback against the in-process server, with 10,000 streams and 100,000
//! recordings (assets) in the catalog. The target is single-digit milliseconds.

use criterion::{criterion_group, criterion_main, Criterion};
use reelay::catalog::{Catalog, NewStreamGroup};
use reelay::config::Config;
use reelay::processing::Processing;
use reelay::server;
use rusqlite::params;
use std::hint::black_box;
use std::path::Path;

const STREAMS: usize = 10_000;
const ASSETS_PER_STREAM: usize = 10;

/// Fills the catalog: streams with tags (through the catalog), then one ended session and ten
/// finished recordings each (rows written in one transaction on a second connection: a
/// hundred thousand recorder round trips would only slow the setup down).
async fn populate(catalog: &Catalog, file: &Path) -> Vec<(String, String)> {
    let org = catalog.list_orgs().await.expect("orgs")[0].hash.clone();
    let processing = Processing::parse(&serde_json::json!([{"id": "rec"}]), "processing")
        .expect("valid processing");
    let mut streams = Vec::with_capacity(STREAMS);
    for i in 0..STREAMS {
        let new = NewStreamGroup {
            tags: vec![format!("lot-{}", i % 100), format!("venue-{}", i % 7)],
            processing: processing.clone(),
            transcodes: Vec::new(),
        };
        let stream = catalog
            .create_stream_group(&org, new)
            .await
            .expect("stream")
            .remove(0);
        streams.push((stream.id.to_string(), stream.streamname));
    }
    let mut conn = rusqlite::Connection::open(file).expect("catalog file");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    let tx = conn.transaction().expect("transaction");
    let at = reelay::catalog::now_rfc3339();
    for (id, name) in &streams {
        let session = uuid::Uuid::new_v4().to_string();
        tx.execute(
            "INSERT INTO sessions (id, stream_id, app, started_at, ended_at, end_reason)
             VALUES (?1, ?2, 'rec', ?3, ?3, 'client_closed')",
            params![session, id, at],
        )
        .expect("session");
        for seq in 1..=ASSETS_PER_STREAM {
            tx.execute(
                "INSERT INTO recordings (id, stream_id, session_id, seq, path, state, created_at,
                     finished_at, size, duration)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'done', ?6, ?6, 1000000, 60.0)",
                params![
                    uuid::Uuid::new_v4().to_string(),
                    id,
                    session,
                    seq,
                    reelay::storage::layout::recording("eu", &org, name, seq as u32),
                    at
                ],
            )
            .expect("recording");
        }
    }
    tx.commit().expect("commit");
    streams
}

fn api(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.server.http_addr = "127.0.0.1:0".into();
    config.rtmp.addr = "127.0.0.1:0".into();
    config.recording.disk_reserve_mb = 1;
    let server = runtime.block_on(server::start(config)).expect("server");
    let key = server.first_admin_key.clone().expect("admin key");
    let ids: Vec<String> = runtime
        .block_on(populate(&server.catalog, &server::catalog_path(dir.path())))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr);
    let get = |path: String| {
        let request = http
            .get(format!("{base}{path}"))
            .header("X-BINTU-APIKEY", &key);
        runtime.block_on(async move {
            let response = request.send().await.expect("request");
            assert!(response.status().is_success(), "{}", response.status());
            response.bytes().await.expect("body").len()
        })
    };
    let mut group = c.benchmark_group("api_10k_streams_100k_assets");
    group.sample_size(50);
    let mut next = 0;
    group.bench_function("GET /stream/{id}", |b| {
        b.iter(|| {
            next = (next + 7919) % ids.len();
            black_box(get(format!("/stream/{}", ids[next])))
        })
    });
    group.bench_function("GET /stream?per_page=150", |b| {
        b.iter(|| black_box(get("/stream?per_page=150".into())))
    });
    group.bench_function("GET /stream?per_page=150&page=60", |b| {
        b.iter(|| black_box(get("/stream?per_page=150&page=60".into())))
    });
    group.bench_function("GET /stream?per_page=150&tags=lot-7,venue-3", |b| {
        b.iter(|| black_box(get("/stream?per_page=150&tags=lot-7,venue-3".into())))
    });
    group.bench_function("GET /stream?per_page=150&streamgroups=true", |b| {
        b.iter(|| black_box(get("/stream?per_page=150&streamgroups=true".into())))
    });
    group.finish();
}

criterion_group!(benches, api);
criterion_main!(benches);
