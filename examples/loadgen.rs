//! Load generator: pushes N concurrent streams from an FLV file at real-time pace and/or
//! opens M RTMP players, then reports the server's CPU and resident memory per stream
//! (read from /proc/<pid>) and how many players kept up.
//!
//! Works against reelay (streams are created through its API with `--api` and `--key`) and
//! against any RTMP server that takes arbitrary stream names (nginx-rtmp): without `--api`,
//! streams are named `load0`, `load1`, ….
//!
//! ```text
//! cargo run --release --example loadgen -- --rtmp 127.0.0.1:1935 --api http://127.0.0.1:8080 \
//!     --key "$(cat reelay-data/admin-api-key)" --pid "$(pidof reelay)" --streams 20 --seconds 30
//! ```
//!
//! `--speed 30` pushes at 30× real time (media time = wall time × speed) and `--report-every 10`
//! prints the server's resident memory every 10 s with the media time pushed so far: with
//! `--app rec --streams 1` that shows whether a long recording's memory stays flat.
//! `--processing '[{"id":"replay","duration":null}]'` creates the streams with that
//! processing list (reelay only), e.g. to measure the replay's cost per stream.
//! `--names-out FILE` writes the stream names once publishing runs (see
//! `examples/picture_cost.sh`, which attaches an ffmpeg thumbnailer to each).
//!
//! A player "keeps up" when it stays connected and receives at least 90 % of the bytes the
//! publisher sent during the measurement window. Players count bytes without parsing them, so
//! the load generator itself stays cheap.

use anyhow::{bail, Context};
use bytes::Bytes;
use reelay::client::RtmpClient;
use reelay::flv::file::{read_tags, FlvTag};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    rtmp: SocketAddr,
    app: String,
    api: Option<String>,
    key: Option<String>,
    pid: Option<u32>,
    streams: usize,
    players: usize,
    seconds: u64,
    warmup: u64,
    file: String,
    /// Pace as a multiple of real time.
    speed: f64,
    /// Print the server's RSS this often (seconds), 0 = never.
    report_every: u64,
    /// The streams' `processing` list (JSON), e.g. `[{"id":"replay","duration":null}]`.
    processing: serde_json::Value,
    /// Write the stream names here (one per line) once publishing starts, so other tools
    /// (an ffmpeg thumbnailer per stream) can attach to them.
    names_out: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        rtmp: "127.0.0.1:1935".parse()?,
        app: "live".into(),
        api: None,
        key: None,
        pid: None,
        streams: 1,
        players: 0,
        seconds: 30,
        warmup: 5,
        file: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/obs-like.flv").into(),
        speed: 1.0,
        report_every: 0,
        processing: serde_json::json!([]),
        names_out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rtmp" => args.rtmp = value()?.parse()?,
            "--app" => args.app = value()?,
            "--api" => args.api = Some(value()?),
            "--key" => args.key = Some(value()?),
            "--pid" => args.pid = Some(value()?.parse()?),
            "--streams" => args.streams = value()?.parse()?,
            "--players" => args.players = value()?.parse()?,
            "--seconds" => args.seconds = value()?.parse()?,
            "--warmup" => args.warmup = value()?.parse()?,
            "--file" => args.file = value()?,
            "--speed" => args.speed = value()?.parse()?,
            "--report-every" => args.report_every = value()?.parse()?,
            "--processing" => args.processing = serde_json::from_str(&value()?)?,
            "--names-out" => args.names_out = Some(value()?),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

/// CPU ticks (user + system) and resident KiB of a process.
fn proc_usage(pid: u32) -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit(')').next().context("stat format")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields after the name start at index 3 (state); utime is 14, stime 15 (1-based).
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .context("VmRSS")?
        .parse()?;
    Ok((utime + stime, rss_kib))
}

async fn create_stream(
    api: &str,
    key: &str,
    processing: &serde_json::Value,
) -> anyhow::Result<String> {
    let resp: serde_json::Value = reqwest::Client::new()
        .post(format!("{api}/stream"))
        .header("X-BINTU-APIKEY", key)
        .json(&serde_json::json!({ "processing": processing }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    resp["ingest"]["rtmp"]["streamname"]
        .as_str()
        .map(String::from)
        .context("no streamname in the API answer")
}

/// Publishes the file in a loop at real-time pace until `stop`, counting bytes sent.
async fn publish(
    addr: SocketAddr,
    app: String,
    name: String,
    tags: Arc<Vec<FlvTag>>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    speed: f64,
) -> anyhow::Result<()> {
    let mut client = RtmpClient::connect(addr, &app).await?;
    client.publish(&name).await?;
    let span = tags.last().map(|t| t.timestamp_ms).unwrap_or(0) + 33;
    let start = Instant::now();
    let mut lap = 0u32;
    'outer: loop {
        for tag in tags.iter() {
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            // Sequence headers and metadata only once.
            let is_header = tag.tag_type == 18 || tag.body.get(1) == Some(&0);
            if lap > 0 && is_header {
                continue;
            }
            let ts = tag.timestamp_ms + lap * span;
            let due = Duration::from_secs_f64(f64::from(ts) / 1000.0 / speed);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            let tag = FlvTag {
                tag_type: tag.tag_type,
                timestamp_ms: ts,
                body: tag.body.clone(),
            };
            client.send_tag(&tag).await?;
            sent.fetch_add(tag.body.len() as u64, Ordering::Relaxed);
        }
        lap += 1;
    }
    client.stop_publishing().await?;
    Ok(())
}

/// Plays a stream and counts bytes until `stop`; false if the server disconnected it.
async fn play(
    addr: SocketAddr,
    app: String,
    name: String,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<bool> {
    use tokio::io::AsyncReadExt;
    let client = RtmpClient::connect(addr, &app).await?;
    let mut socket = client.into_play_socket(&name).await?;
    let mut buf = vec![0u8; 256 * 1024];
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(200), socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(false),
            Ok(Ok(n)) => {
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(_) => {}
        }
    }
    Ok(true)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let tags = Arc::new(read_tags(&Bytes::from(std::fs::read(&args.file)?))?);
    let idle = args.pid.map(proc_usage).transpose()?;
    let mut names = Vec::new();
    for i in 0..args.streams {
        names.push(match (&args.api, &args.key) {
            (Some(api), Some(key)) => create_stream(api, key, &args.processing).await?,
            _ => format!("load{i}"),
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sent: Vec<_> = names.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut publishers = Vec::new();
    for (name, counter) in names.iter().zip(&sent) {
        publishers.push(tokio::spawn(publish(
            args.rtmp,
            args.app.clone(),
            name.clone(),
            tags.clone(),
            counter.clone(),
            stop.clone(),
            args.speed,
        )));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let Some(path) = &args.names_out {
        std::fs::write(path, names.join("\n") + "\n")?;
    }
    let received: Vec<_> = (0..args.players)
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let mut players = Vec::new();
    for (i, counter) in received.iter().enumerate() {
        let name = names[i % names.len().max(1)].clone();
        players.push(tokio::spawn(play(
            args.rtmp,
            args.app.clone(),
            name,
            counter.clone(),
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;

    let before = args.pid.map(proc_usage).transpose()?;
    let sent_before: Vec<u64> = sent.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let received_before: Vec<u64> = received.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let window = Instant::now();
    match (args.pid, args.report_every) {
        (Some(pid), every) if every > 0 => {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(args.seconds) {
                tokio::time::sleep(Duration::from_secs(every)).await;
                let (_, rss_kib) = proc_usage(pid)?;
                let media_min = (started.elapsed().as_secs_f64() + args.warmup as f64 + 1.0)
                    * args.speed
                    / 60.0;
                println!(
                    "media ≈ {media_min:.1} min  server RSS {} MiB",
                    rss_kib / 1024
                );
            }
        }
        _ => tokio::time::sleep(Duration::from_secs(args.seconds)).await,
    }
    let elapsed = window.elapsed().as_secs_f64();
    let after = args.pid.map(proc_usage).transpose()?;
    let sent_in_window: Vec<u64> = sent
        .iter()
        .zip(&sent_before)
        .map(|(c, b)| c.load(Ordering::Relaxed) - b)
        .collect();
    let received_in_window: Vec<u64> = received
        .iter()
        .zip(&received_before)
        .map(|(c, b)| c.load(Ordering::Relaxed) - b)
        .collect();
    stop.store(true, Ordering::Relaxed);

    let mut failed_publishers = 0;
    for p in publishers {
        if !matches!(p.await, Ok(Ok(()))) {
            failed_publishers += 1;
        }
    }
    let mut kept_up = 0;
    let mut disconnected = 0;
    for (i, p) in players.into_iter().enumerate() {
        let expected = sent_in_window[i % sent_in_window.len().max(1)] as f64;
        match p.await {
            Ok(Ok(true)) if received_in_window[i] as f64 >= 0.9 * expected => kept_up += 1,
            Ok(Ok(true)) => {}
            _ => disconnected += 1,
        }
    }
    let ingest_mbit = sent_in_window.iter().sum::<u64>() as f64 * 8.0 / elapsed / 1e6;
    println!(
        "streams: {}  players: {}  window: {elapsed:.1} s",
        args.streams, args.players
    );
    println!("ingest: {ingest_mbit:.2} Mbit/s total, publishers failed: {failed_publishers}");
    if args.players > 0 {
        println!(
            "players kept up: {kept_up}/{}  disconnected: {disconnected}",
            args.players
        );
    }
    if let (Some((_, idle_kib)), Some((t0, _)), Some((t1, rss_kib))) = (idle, before, after) {
        let ticks_per_sec = 100.0; // USER_HZ on Linux
        let cpu_percent = (t1 - t0) as f64 / ticks_per_sec / elapsed * 100.0;
        let per_stream = cpu_percent / args.streams.max(1) as f64;
        let grown_mib = (rss_kib.saturating_sub(idle_kib)) as f64 / 1024.0;
        println!(
            "server cpu: {cpu_percent:.2} % of one core, {per_stream:.3} % per stream; \
             rss: {:.1} MiB (idle {:.1} MiB), growth {:.3} MiB per stream",
            rss_kib as f64 / 1024.0,
            idle_kib as f64 / 1024.0,
            grown_mib / args.streams.max(1) as f64
        );
    }
    Ok(())
}
