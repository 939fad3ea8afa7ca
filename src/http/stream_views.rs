//! The bintu JSON shape of a stream, built from its catalog row, its sinks' status and its
//! picture files: one stream with its assets (`GET /stream/{id}`), list entries (one
//! blocking task per page for the picture files), and the asset entries sessions share.

use super::views::{
    AssetType, AssetView, HlsPlayout, IngestView, PictureView, PlayoutView, RtmpIngest,
    RtmpPlayout, StreamView,
};
use super::{ApiError, AppState};
use crate::catalog::{self, Clip, Replay, Stream, VodAsset};
use crate::sinks::pictures::{picture_paths, PictureKind};
use crate::status::{SinkState, SinkStatus};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::SystemTime;
use uuid::Uuid;

/// A finished recording in the SPEC asset shape (`playout.web`).
pub fn vod_view(state: &AppState, stream: &Stream, asset: &VodAsset) -> AssetView {
    AssetView {
        url: format!("{}/{}", state.urls.http, asset.path),
        kind: AssetType::Vod,
        stream_id: stream.id,
        streamname: stream.streamname.clone(),
        session: asset.session_id,
        created_at: asset.created_at.clone(),
        size: Some(asset.size),
        duration: Some(asset.duration_secs),
        start: None,
        end: None,
    }
}

/// A replay session in the SPEC asset shape (`playout.replay`, type `playout`).
pub fn replay_view(state: &AppState, stream: &Stream, replay: &Replay) -> AssetView {
    AssetView {
        url: format!(
            "{}/replay/{}/{}/index.m3u8",
            state.urls.http, stream.streamname, replay.session_id
        ),
        kind: AssetType::Playout,
        stream_id: stream.id,
        streamname: stream.streamname.clone(),
        session: replay.session_id,
        created_at: replay.created_at.clone(),
        size: None,
        duration: replay.duration_secs,
        start: None,
        end: None,
    }
}

/// A clip in the SPEC asset shape (type `clip`).
pub fn clip_view(state: &AppState, stream: &Stream, clip: &Clip) -> AssetView {
    AssetView {
        url: format!("{}/{}", state.urls.http, clip.path),
        kind: AssetType::Clip,
        stream_id: stream.id,
        streamname: stream.streamname.clone(),
        session: clip.session_id,
        created_at: clip.created_at.clone(),
        size: Some(clip.size),
        duration: Some(clip.duration_secs),
        start: Some(clip.start_secs),
        end: Some(clip.end_secs),
    }
}

/// The stream with its newest `asset_limit` assets of each kind and its group's RTMP
/// playouts.
pub async fn stream_with_assets(
    state: &AppState,
    stream: &Stream,
    asset_limit: usize,
) -> Result<StreamView, ApiError> {
    let (id, group, org) = (stream.id, stream.streamgroup, stream.org_hash.clone());
    let (vods, replays, clips, members) = state
        .catalog
        .call(move |conn| {
            Ok((
                catalog::list_vod_assets(conn, id, asset_limit)?,
                catalog::list_replays(conn, id, asset_limit)?,
                catalog::list_clips(conn, id, asset_limit)?,
                catalog::group_streams(conn, &org, group)?,
            ))
        })
        .await?;
    let mut view = stream_view(state, stream, &members);
    let playout = &mut view.playout;
    playout.web = vods.iter().map(|a| vod_view(state, stream, a)).collect();
    playout.replay = replays
        .iter()
        .map(|r| replay_view(state, stream, r))
        .collect();
    playout.clips = clips.iter().map(|c| clip_view(state, stream, c)).collect();
    let files = picture_files(state, std::slice::from_ref(stream), asset_limit).await;
    if let Some(files) = files.into_iter().next() {
        set_pictures(state, stream, &mut view, files);
    }
    Ok(view)
}

/// List entries: each stream with its latest pictures (no history), the files looked at in
/// one blocking task for the whole page; `groups` (from `catalog::group_members`) fills
/// `playout.rtmp` with every profile of a stream's group, as a single read does.
pub async fn list_views(
    state: &AppState,
    streams: &[Stream],
    groups: &HashMap<Uuid, Vec<Stream>>,
) -> Vec<StreamView> {
    let files = picture_files(state, streams, 0).await;
    streams
        .iter()
        .zip(
            files
                .into_iter()
                .chain(std::iter::repeat(Default::default())),
        )
        .map(|(stream, files)| {
            let group = groups
                .get(&stream.streamgroup)
                .map_or(&[][..], Vec::as_slice);
            let mut view = stream_view(state, stream, group);
            set_pictures(state, stream, &mut view, files);
            view
        })
        .collect()
}

/// The two kinds of picture, in the order `PictureFiles` holds them.
const PICTURE_KINDS: [PictureKind; 2] = [PictureKind::Thumbnail, PictureKind::MotionClip];

/// A stream's latest thumbnail and motion clip, if written: when, and the newest history
/// file names.
type PictureFiles = [Option<(SystemTime, Vec<String>)>; 2];

/// When the latest picture of one kind was written and its newest `history_limit` history
/// file names (newest first); `None` before the first one.
fn picture_file(
    data_dir: &Path,
    streamname: &str,
    kind: PictureKind,
    history_limit: usize,
) -> Option<(SystemTime, Vec<String>)> {
    let (folder, stable) = picture_paths(data_dir, streamname, kind);
    let modified = std::fs::metadata(&stable).and_then(|m| m.modified()).ok()?;
    if history_limit == 0 {
        return Some((modified, Vec::new()));
    }
    let suffix = format!(".{}", kind.extension());
    let mut history: Vec<String> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.ends_with(&suffix))
                .collect()
        })
        .unwrap_or_default();
    history.sort_unstable_by(|a, b| b.cmp(a));
    history.truncate(history_limit);
    Some((modified, history))
}

/// The picture files of `streams`, looked at in one blocking task.
async fn picture_files(
    state: &AppState,
    streams: &[Stream],
    history_limit: usize,
) -> Vec<PictureFiles> {
    let data_dir = state.data_dir.clone();
    let names: Vec<String> = streams.iter().map(|s| s.streamname.clone()).collect();
    tokio::task::spawn_blocking(move || {
        names
            .iter()
            .map(|name| {
                PICTURE_KINDS.map(|kind| picture_file(&data_dir, name, kind, history_limit))
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// Puts a stream's pictures into its view (`playout.thumbnails`, `playout.motionclip`).
fn set_pictures(state: &AppState, stream: &Stream, view: &mut StreamView, files: PictureFiles) {
    for (kind, file) in PICTURE_KINDS.into_iter().zip(files) {
        let Some((modified, history)) = file else {
            continue;
        };
        let picture = latest_picture(state, stream, kind, modified, history);
        match kind {
            PictureKind::Thumbnail => view.playout.thumbnails = vec![picture],
            PictureKind::MotionClip => view.playout.motionclip = vec![picture],
        }
    }
}

/// The latest picture entry of one kind, written at `modified`, with `history` file names.
fn latest_picture(
    state: &AppState,
    stream: &Stream,
    kind: PictureKind,
    modified: std::time::SystemTime,
    history: Vec<String>,
) -> PictureView {
    let base = format!("{}/thumbnails/{}", state.urls.http, stream.streamname);
    PictureView {
        url: format!("{base}.{}", kind.extension()),
        kind: match kind {
            PictureKind::Thumbnail => AssetType::Image,
            PictureKind::MotionClip => AssetType::Gif,
        },
        stream_id: stream.id,
        streamname: stream.streamname.clone(),
        updated_at: catalog::format_rfc3339(modified.into()),
        history: history
            .iter()
            .map(|name| format!("{base}/{name}"))
            .collect(),
    }
}

/// One stream of a group as an RTMP playout entry.
fn rtmp_playout(state: &AppState, stream: &Stream) -> RtmpPlayout {
    let mut status: BTreeMap<String, SinkStatus> = state
        .status
        .of(stream.id)
        .into_iter()
        .map(|(sink, status)| (sink.to_string(), status))
        .collect();
    if stream.profile.is_some() {
        status.insert(
            "transcoding".into(),
            SinkStatus {
                state: SinkState::Unavailable,
                detail: Some("transcoding is not built into this server yet".into()),
                ..SinkStatus::default()
            },
        );
    }
    RtmpPlayout {
        id: stream.id,
        streamname: stream.streamname.clone(),
        url: format!("{}/live", state.urls.rtmp),
        index: stream.index,
        profile: stream.profile.clone(),
        tags: stream.tags.clone(),
        processing: stream.processing.clone(),
        status,
    }
}

/// The stream in the bintu shape of `GET /stream/{id}`, without asset lists; `playout.rtmp`
/// lists `group` (every stream of its group; empty: just this one).
pub fn stream_view(state: &AppState, stream: &Stream, group: &[Stream]) -> StreamView {
    let rtmp = if group.is_empty() {
        vec![rtmp_playout(state, stream)]
    } else {
        group.iter().map(|s| rtmp_playout(state, s)).collect()
    };
    StreamView {
        id: stream.id,
        streamgroup: stream.streamgroup,
        state: stream.state,
        tags: stream.tags.clone(),
        created_at: stream.created_at.clone(),
        updated_at: stream.updated_at.clone(),
        ingest: IngestView {
            rtmp: RtmpIngest {
                url: format!("{}/live", state.urls.rtmp),
                streamname: stream.streamname.clone(),
            },
        },
        playout: PlayoutView {
            rtmp,
            hls: vec![HlsPlayout {
                url: format!("{}/live/{}/index.m3u8", state.urls.http, stream.streamname),
                kind: AssetType::Live,
                stream_id: stream.id,
            }],
            ..PlayoutView::default()
        },
        notice: None,
    }
}
