//! The one place that names files. Every file reelay writes or serves has a key: a relative,
//! `/`-separated name made only of plain segments (`[A-Za-z0-9._-]`, no leading dot). On the
//! local disk a key is a path under the data folder; in an object store it will be the object
//! key, unchanged. Most keys are also their URL path (`vod/eu/ABCDE/ABCDE-x1Y2z-1.mp4` is
//! served at `/vod/eu/ABCDE/ABCDE-x1Y2z-1.mp4`); HLS files are served under `/live/` and
//! `/replay/` but stored once under `hls/`.
//!
//! URL paths from clients are turned into keys here too, and only if every segment is plain,
//! so no request can name a file outside the data folder or a dot file.
//!
//! ```text
//! catalog.sqlite3, admin-api-key, .disk-reserve       the server's own files
//! vod/<region>/<orghash>/<streamname>-<n>.mp4          recordings
//! hls/<streamname>/<session>/init-<n>.mp4, <seq>.m4s   CMAF segments (live HLS and replay)
//! hls/<streamname>/<session>/index.m3u8                the replay playlist
//! clips/<streamname>/<clip id>.mp4                     clip & share
//! thumbnails/<streamname>.jpg|.gif                     the latest thumbnail / motion clip
//! thumbnails/<streamname>/<UTC stamp>.jpg|.gif         their history
//! ```

use crate::catalog::PictureKind;
use time::OffsetDateTime;
use uuid::Uuid;

/// The catalog database.
pub const CATALOG_FILE: &str = "catalog.sqlite3";
/// The first admin key, written once (mode 0600).
pub const ADMIN_KEY_FILE: &str = "admin-api-key";
/// Disk space kept back to finish recordings on a full disk (`storage::reserve`).
pub const RESERVE_FILE: &str = ".disk-reserve";
/// The replay playlist's name inside its session folder.
pub const REPLAY_PLAYLIST: &str = "index.m3u8";

/// Whether `segment` is one plain file or folder name.
fn plain_segment(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether every `/`-separated segment of `key` is plain: the test every key passes before it
/// touches a disk or a store.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.split('/').all(plain_segment)
}

/// `key` if valid.
fn checked(key: String) -> Option<String> {
    is_valid_key(&key).then_some(key)
}

/// `20261121T101500Z`: history names sort by time.
pub fn stamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The time a history name's stamp gives, for importing history written before the catalog
/// listed it.
pub fn parse_stamp(name: &str) -> Option<OffsetDateTime> {
    // Only ASCII digits: `str::parse` would also take a sign (`T+32000Z` as 03:20:00).
    let digits = |range: std::ops::Range<usize>| {
        let field = name.get(range)?;
        field
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| field.parse::<u32>().ok())?
    };
    if name.get(8..9) != Some("T") || name.get(15..16) != Some("Z") {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(digits(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(digits(0..4)?).ok()?,
        month,
        u8::try_from(digits(6..8)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(digits(9..11)?).ok()?,
        u8::try_from(digits(11..13)?).ok()?,
        u8::try_from(digits(13..15)?).ok()?,
    )
    .ok()?;
    Some(date.with_time(clock).assume_utc())
}

/// A recording: `vod/<region>/<orghash>/<streamname>-<n>.mp4`.
pub fn recording(region: &str, org_hash: &str, streamname: &str, n: u32) -> String {
    format!("vod/{region}/{org_hash}/{streamname}-{n}.mp4")
}

/// A session's HLS folder: `hls/<streamname>/<session>`.
pub fn hls_session(streamname: &str, session: Uuid) -> String {
    format!("hls/{streamname}/{session}")
}

/// The name of a session's n-th init segment (inside its folder, and in its playlists).
pub fn hls_init_name(n: u32) -> String {
    format!("init-{n}.mp4")
}

/// The name of a media segment (inside its session folder, and in its playlists).
pub fn hls_segment_name(sequence: u64) -> String {
    format!("{sequence}.m4s")
}

/// A file in a session's HLS folder.
pub fn hls_file(streamname: &str, session: Uuid, name: &str) -> String {
    format!("{}/{name}", hls_session(streamname, session))
}

/// The key of the file `name` in the folder `folder` (a replay's playlist or a segment it
/// lists), if `name` is one plain file name.
pub fn file_in(folder: &str, name: &str) -> Option<String> {
    plain_segment(name)
        .then(|| format!("{folder}/{name}"))
        .and_then(checked)
}

/// The key of `/live/<streamname>/<session>/<file>` or `/replay/…/<file>` (segments, init
/// segments, the replay playlist), if every part is plain and the session is an id.
pub fn hls_file_from_url(streamname: &str, session: &str, file: &str) -> Option<String> {
    let session = Uuid::parse_str(session).ok()?;
    (plain_segment(streamname) && plain_segment(file)).then(|| hls_file(streamname, session, file))
}

/// The URL path (after the base URL) of a replay playlist.
pub fn replay_playlist_url(streamname: &str, session: Uuid) -> String {
    format!("replay/{streamname}/{session}/{REPLAY_PLAYLIST}")
}

/// A clip: `clips/<streamname>/<clip id>.mp4`.
pub fn clip(streamname: &str, id: Uuid) -> String {
    format!("clips/{streamname}/{id}.mp4")
}

/// The key of `/clips/<streamname>/<file>`.
pub fn clip_from_url(streamname: &str, file: &str) -> Option<String> {
    (file.ends_with(".mp4") && plain_segment(streamname) && plain_segment(file))
        .then(|| format!("clips/{streamname}/{file}"))
}

/// The key of `/vod/<path>`.
pub fn vod_from_url(path: &str) -> Option<String> {
    checked(format!("vod/{path}")).filter(|k| k.ends_with(".mp4"))
}

/// A stream's latest picture of one kind: `thumbnails/<streamname>.<ext>`.
pub fn picture_latest(streamname: &str, kind: PictureKind) -> String {
    format!("thumbnails/{streamname}.{}", kind.extension())
}

/// A history picture taken at `at`: `thumbnails/<streamname>/<stamp>.<ext>`.
pub fn picture_history(streamname: &str, kind: PictureKind, at: OffsetDateTime) -> String {
    format!(
        "{}/{}.{}",
        picture_history_folder(streamname),
        stamp(at),
        kind.extension()
    )
}

/// The folder of a stream's picture history.
pub fn picture_history_folder(streamname: &str) -> String {
    format!("thumbnails/{streamname}")
}

/// The picture kind a file name's extension says.
pub fn picture_kind(file: &str) -> Option<PictureKind> {
    PictureKind::ALL
        .into_iter()
        .find(|k| file.ends_with(&format!(".{}", k.extension())))
}

/// The key of `/thumbnails/<file>` (a latest picture).
pub fn picture_latest_from_url(file: &str) -> Option<(String, PictureKind)> {
    let kind = picture_kind(file)?;
    plain_segment(file).then(|| (format!("thumbnails/{file}"), kind))
}

/// The key of `/thumbnails/<streamname>/<file>` (a history picture).
pub fn picture_history_from_url(streamname: &str, file: &str) -> Option<(String, PictureKind)> {
    let kind = picture_kind(file)?;
    (plain_segment(streamname) && plain_segment(file))
        .then(|| (format!("thumbnails/{streamname}/{file}"), kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_segments_make_keys() {
        assert!(is_valid_key("vod/eu/ABCDE/ABCDE-x1Y2z-1.mp4"));
        for bad in [
            "",
            "/etc/passwd",
            "vod/../../x.mp4",
            "vod//x.mp4",
            ".hidden.mp4",
            "vod/.disk-reserve",
            "vod/%2e%2e/x",
            "a\\b.mp4",
            "vod/x.mp4/",
        ] {
            assert!(!is_valid_key(bad), "{bad}");
        }
        assert_eq!(
            vod_from_url("eu/ABCDE/ABCDE-x-1.mp4").as_deref(),
            Some("vod/eu/ABCDE/ABCDE-x-1.mp4")
        );
        assert!(vod_from_url("eu/../x.mp4").is_none());
        assert!(vod_from_url("eu/ABCDE/notes.txt").is_none());
        assert!(hls_file_from_url("A-b", "not-a-uuid", "0.m4s").is_none());
        assert!(hls_file_from_url("..", &Uuid::nil().to_string(), "0.m4s").is_none());
        assert!(clip_from_url("A-b", "x.gif").is_none());
        assert!(picture_latest_from_url("A-b.png").is_none());
        assert_eq!(
            picture_history_from_url("A-b", "20261121T101500Z.gif"),
            Some((
                "thumbnails/A-b/20261121T101500Z.gif".into(),
                PictureKind::MotionClip
            ))
        );
    }

    #[test]
    fn every_named_file_is_a_valid_key_and_round_trips_its_url() {
        let session = Uuid::new_v4();
        let at = time::macros::datetime!(2026-11-21 10:15:00 UTC);
        let keys = [
            recording("eu", "ABCDE", "ABCDE-x1Y2z", 3),
            hls_file("ABCDE-x1Y2z", session, &hls_segment_name(7)),
            hls_file("ABCDE-x1Y2z", session, &hls_init_name(1)),
            clip("ABCDE-x1Y2z", session),
            picture_latest("ABCDE-x1Y2z", PictureKind::Thumbnail),
            picture_history("ABCDE-x1Y2z", PictureKind::MotionClip, at),
        ];
        for key in &keys {
            assert!(is_valid_key(key), "{key}");
        }
        assert_eq!(keys[0], "vod/eu/ABCDE/ABCDE-x1Y2z-3.mp4");
        assert_eq!(
            vod_from_url(&keys[0]["vod/".len()..]).as_ref(),
            Some(&keys[0])
        );
        assert_eq!(
            hls_file_from_url("ABCDE-x1Y2z", &session.to_string(), "7.m4s").as_ref(),
            Some(&keys[1])
        );
        assert_eq!(
            clip_from_url("ABCDE-x1Y2z", &format!("{session}.mp4")).as_ref(),
            Some(&keys[3])
        );
        assert_eq!(
            keys[5],
            "thumbnails/ABCDE-x1Y2z/20261121T101500Z.gif".to_string()
        );
        assert_eq!(parse_stamp("20261121T101500Z.gif"), Some(at));
        assert_eq!(parse_stamp("20261321T101500Z.gif"), None);
        // Found by the settings_and_keys fuzz target: a sign is not a digit.
        assert_eq!(parse_stamp("20261010T+32000Z.jpg0Z."), None);
        assert_eq!(parse_stamp("+0261010T032000Z.jpg"), None);
        assert_eq!(parse_stamp("x"), None);
    }
}
