//! Multivariant ("master") playlists (RFC 8216bis §4.4.6) for stream groups: one
//! `EXT-X-STREAM-INF` per rendition with the figures measured on its segments. Pure.

use std::fmt::Write;

/// One rendition as a multivariant playlist's `EXT-X-STREAM-INF` describes it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VariantInfo {
    /// RFC 6381 codecs, video first (`avc1.64001f,mp4a.40.2`).
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    /// The highest segment bit rate among the recent segments (`BANDWIDTH`).
    pub peak_bps: u64,
    /// Their average bit rate (`AVERAGE-BANDWIDTH`).
    pub average_bps: u64,
}

/// The multivariant playlist of `renditions` (the URI of each rendition's media playlist,
/// relative to this playlist, and its figures), in the order given (highest first).
pub fn master_playlist(renditions: &[(String, VariantInfo)]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (uri, variant) in renditions {
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={}",
            variant.peak_bps.max(1),
            variant.average_bps.max(1)
        );
        if !variant.codecs.is_empty() {
            let _ = write!(out, ",CODECS=\"{}\"", variant.codecs);
        }
        if let Some((w, h)) = variant.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(fps) = variant.frame_rate {
            let _ = write!(out, ",FRAME-RATE={fps:.3}");
        }
        let _ = write!(out, "\n{uri}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rendition_is_listed_with_its_figures() {
        let text = master_playlist(&[
            (
                "../abcde-full/index.m3u8".into(),
                VariantInfo {
                    codecs: "avc1.64001f,mp4a.40.2".into(),
                    resolution: Some((1280, 720)),
                    frame_rate: Some(30.0),
                    peak_bps: 2_600_000,
                    average_bps: 2_400_000,
                },
            ),
            (
                "../abcde-small/index.m3u8".into(),
                VariantInfo {
                    codecs: "avc1.42c01e,mp4a.40.2".into(),
                    resolution: Some((640, 360)),
                    frame_rate: Some(25.0),
                    peak_bps: 450_000,
                    average_bps: 400_000,
                },
            ),
        ]);
        let parsed = hls_m3u8::MasterPlaylist::try_from(text.as_str()).unwrap();
        assert_eq!(parsed.variant_streams.len(), 2);
        assert!(text.contains("RESOLUTION=640x360,FRAME-RATE=25.000\n../abcde-small/index.m3u8"));
        assert!(text.contains(
            "BANDWIDTH=2600000,AVERAGE-BANDWIDTH=2400000,CODECS=\"avc1.64001f,mp4a.40.2\""
        ));
    }
}
