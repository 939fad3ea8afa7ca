//! The bintu JSON shape of a stream, built from its catalog row and assets (pictures
//! included, all read in one catalog job per answer) and its sinks' status from the session
//! registry: one stream with its assets (`GET /stream/{id}`), list entries, and the asset
//! entries sessions share. URLs are the public base plus the file's storage key (or its
//! route, for HLS).

use super::views::{
    AssetType, AssetView, HlsPlayout, IngestView, PictureView, PlayoutView, RtmpIngest,
    RtmpPlayout, StreamView,
};
use super::{ApiError, AppState};
use crate::catalog::{
    Clip, LatestPictures, PictureHistory, PictureKind, Replay, Stream, StreamPage, VodAsset,
};
use crate::status::SinkStatus;
use crate::storage::layout;
use std::collections::BTreeMap;

/// A finished recording in the SPEC asset shape (`playout.web`).
pub fn vod_view(state: &AppState, stream: &Stream, asset: &VodAsset) -> AssetView {
    AssetView {
        url: format!("{}/{}", state.urls.http, asset.key),
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
            "{}/{}",
            state.urls.http,
            layout::replay_playlist_url(&stream.streamname, replay.session_id)
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
        url: format!("{}/{}", state.urls.http, clip.key),
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
    let assets = state
        .catalog
        .stream_assets(&stream.org_hash, stream.id, stream.streamgroup, asset_limit)
        .await?;
    let mut view = stream_view(state, stream, &assets.members);
    let playout = &mut view.playout;
    playout.web = assets
        .vods
        .iter()
        .map(|a| vod_view(state, stream, a))
        .collect();
    playout.replay = assets
        .replays
        .iter()
        .map(|r| replay_view(state, stream, r))
        .collect();
    playout.clips = assets
        .clips
        .iter()
        .map(|c| clip_view(state, stream, c))
        .collect();
    set_pictures(state, stream, &mut view, assets.pictures);
    Ok(view)
}

/// List entries: each stream with its latest pictures (no history); the page's groups fill
/// `playout.rtmp` with every profile of a stream's group, as a single read does.
pub fn list_views(state: &AppState, page: &StreamPage) -> Vec<StreamView> {
    page.items
        .iter()
        .zip(
            page.pictures
                .iter()
                .cloned()
                .chain(std::iter::repeat_with(LatestPictures::default)),
        )
        .map(|(stream, pictures)| {
            let group = page
                .groups
                .get(&stream.streamgroup)
                .map_or(&[][..], Vec::as_slice);
            let mut view = stream_view(state, stream, group);
            set_pictures(state, stream, &mut view, pictures);
            view
        })
        .collect()
}

/// Puts a stream's pictures into its view (`playout.thumbnails`, `playout.motionclip`).
fn set_pictures(
    state: &AppState,
    stream: &Stream,
    view: &mut StreamView,
    pictures: LatestPictures,
) {
    for (kind, picture) in PictureKind::ALL.into_iter().zip(pictures) {
        let Some(picture) = picture else {
            continue;
        };
        let entry = latest_picture(state, stream, kind, picture);
        match kind {
            PictureKind::Thumbnail => view.playout.thumbnails = vec![entry],
            PictureKind::MotionClip => view.playout.motionclip = vec![entry],
        }
    }
}

/// The latest picture entry of one kind.
fn latest_picture(
    state: &AppState,
    stream: &Stream,
    kind: PictureKind,
    picture: PictureHistory,
) -> PictureView {
    let base = &state.urls.http;
    PictureView {
        url: format!(
            "{base}/{}",
            layout::picture_latest(&stream.streamname, kind)
        ),
        kind: match kind {
            PictureKind::Thumbnail => AssetType::Image,
            PictureKind::MotionClip => AssetType::Gif,
        },
        stream_id: stream.id,
        streamname: stream.streamname.clone(),
        updated_at: picture.updated_at,
        history: picture
            .history
            .iter()
            .map(|key| format!("{base}/{key}"))
            .collect(),
    }
}

/// One stream of a group as an RTMP playout entry.
fn rtmp_playout(state: &AppState, stream: &Stream) -> RtmpPlayout {
    let status: BTreeMap<String, SinkStatus> = state
        .sessions
        .status_of(stream.id)
        .into_iter()
        .map(|(sink, status)| (sink.to_string(), status))
        .collect();
    RtmpPlayout {
        id: stream.id,
        streamname: stream.streamname.clone(),
        url: format!("{}/live", state.urls.rtmp),
        index: stream.index,
        profile: stream.profile,
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
    let mut hls = vec![HlsPlayout {
        url: format!("{}/live/{}/index.m3u8", state.urls.http, stream.streamname),
        kind: AssetType::Live,
        stream_id: stream.id,
    }];
    if stream.index == 0 && group.iter().any(|s| s.profile.is_some()) {
        // The group's renditions as one ABR stream (SPEC "Stream groups").
        hls.push(HlsPlayout {
            url: format!("{}/live/{}/master.m3u8", state.urls.http, stream.streamname),
            kind: AssetType::Abr,
            stream_id: stream.id,
        });
    }
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
            hls,
            ..PlayoutView::default()
        },
        notice: None,
    }
}
