//! Turns a fragmented recording into a regular MP4 in place, and cuts a crashed one at its
//! last complete fragment.
//!
//! The layout while recording is `ftyp`, `moov` (with `mvex`), then `moof`+`mdat` pairs, each
//! synced as it is written. Finalising (clean end or recovery) does, in this order:
//! 1. scan the top-level boxes and keep the complete, consistent `moof`+`mdat` pairs;
//! 2. truncate anything after the last one (a fragment cut short by a crash);
//! 3. append a complete `moov` whose chunk offsets point into the `mdat`s where the media
//!    already is (nothing is copied), and sync;
//! 4. rename the fragmented `moov` and every `moof` to `free` (4-byte writes), and sync.
//!
//! A crash between 3 and 4 leaves a file whose last box is a complete `moov` without `mvex`:
//! the scan recognises it as finalised and only repeats step 4. The work is proportional to
//! the number of fragments (one small read per fragment) plus the new `moov`, never to the
//! media size.

use super::track::MOVIE_TIMESCALE;
use mp4_atom::{
    Co64, Ctts, CttsEntry, Decode, Edts, Elst, ElstEntry, Encode, Moof, Moov, Stco, Stsc,
    StscEntry, Stss, Stsz, StszSamples, Stts, SttsEntry, TrunEntry,
};
use std::io::{self, Read, Seek, SeekFrom, Write};

/// A box larger than this where only headers are expected (`moov`, `moof`) is corruption.
const MAX_HEADER_BOX_BYTES: u64 = 64 << 20;

/// What finalising needs from a file; implemented for `&std::fs::File` (so a file shared
/// with the writer can be finalised) and in-memory buffers.
pub trait RecordingFile: Read + Write + Seek {
    fn truncate_to(&mut self, len: u64) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
}

impl RecordingFile for &std::fs::File {
    fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }
}

impl RecordingFile for io::Cursor<Vec<u8>> {
    fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        self.get_mut()
            .truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(())
    }
    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a recording could not be finalised.
#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("no playable fragment: {0}")]
    Empty(&'static str),
    #[error("cannot encode moov: {0}")]
    Encode(#[from] mp4_atom::Error),
}

/// The result of finalising.
#[derive(Debug, Clone, PartialEq)]
pub struct Finalized {
    pub size_bytes: u64,
    pub duration_secs: f64,
    /// Samples listed in the final `moov`, over all tracks.
    pub samples: u64,
    /// Bytes cut off the end (a fragment the crash left incomplete).
    pub truncated_bytes: u64,
}

#[derive(Debug)]
struct FragmentAt {
    moof_offset: u64,
    moof: Moof,
}

#[derive(Debug, Default)]
struct Scan {
    init_moov: Option<(u64, Moov)>,
    fragments: Vec<FragmentAt>,
    /// End of the last complete, consistent box we keep.
    valid_end: u64,
    /// A complete `moov` without `mvex` as the last box: already finalised.
    final_moov: Option<(u64, Moov)>,
    file_len: u64,
}

fn read_exact_at<F: Read + Seek>(file: &mut F, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// (type, header length, total size) of the box at `offset`, if it lies wholly in the file.
fn box_header<F: Read + Seek>(
    file: &mut F,
    offset: u64,
    file_len: u64,
) -> io::Result<Option<([u8; 4], u64, u64)>> {
    if file_len.saturating_sub(offset) < 8 {
        return Ok(None);
    }
    let mut header = [0u8; 16];
    read_exact_at(file, offset, &mut header[..8])?;
    let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let kind = [header[4], header[5], header[6], header[7]];
    let (header_len, size) = match size32 {
        0 => return Ok(None), // "to end of file": only a writer that never finished does this
        1 => {
            if file_len.saturating_sub(offset) < 16 {
                return Ok(None);
            }
            read_exact_at(file, offset + 8, &mut header[8..16])?;
            let mut large = [0u8; 8];
            large.copy_from_slice(&header[8..16]);
            (16, u64::from_be_bytes(large))
        }
        n => (8, u64::from(n)),
    };
    if size < header_len || offset.checked_add(size).is_none_or(|end| end > file_len) {
        return Ok(None);
    }
    Ok(Some((kind, header_len, size)))
}

fn read_box<F: Read + Seek>(file: &mut F, offset: u64, size: u64) -> io::Result<Option<Vec<u8>>> {
    if size > MAX_HEADER_BOX_BYTES {
        return Ok(None);
    }
    let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
    read_exact_at(file, offset, &mut buf)?;
    Ok(Some(buf))
}

/// Whether every run of `moof` points inside the `mdat` that follows it.
fn runs_inside(moof: &Moof, moof_offset: u64, mdat_payload: (u64, u64)) -> bool {
    moof.traf.iter().all(|traf| {
        traf.trun.iter().all(|trun| {
            let Some(data_offset) = trun.data_offset else {
                return false;
            };
            let Ok(data_offset) = u64::try_from(data_offset) else {
                return false;
            };
            let start = moof_offset + data_offset;
            let size: u64 = trun
                .samples
                .iter()
                .map(|e| u64::from(e.size.or(traf.tfhd.default_sample_size).unwrap_or(0)))
                .sum();
            start >= mdat_payload.0 && start.saturating_add(size) <= mdat_payload.1
        })
    })
}

fn scan<F: Read + Seek>(file: &mut F) -> io::Result<Scan> {
    let file_len = file.seek(SeekFrom::End(0))?;
    let mut scan = Scan {
        file_len,
        ..Scan::default()
    };
    let mut offset = 0u64;
    while let Some((kind, _, size)) = box_header(file, offset, file_len)? {
        let end = offset + size;
        match &kind {
            b"moov" => {
                let Some(bytes) = read_box(file, offset, size)? else {
                    break;
                };
                let Ok(moov) = Moov::decode(&mut bytes.as_slice()) else {
                    break;
                };
                if moov.mvex.is_some() && scan.init_moov.is_none() && scan.fragments.is_empty() {
                    scan.init_moov = Some((offset, moov));
                } else if moov.mvex.is_none() && end == file_len {
                    scan.final_moov = Some((offset, moov));
                    return Ok(scan);
                } else {
                    break;
                }
            }
            b"moof" => {
                let Some(bytes) = read_box(file, offset, size)? else {
                    break;
                };
                let Ok(moof) = Moof::decode(&mut bytes.as_slice()) else {
                    break;
                };
                let Some((next_kind, next_header, next_size)) = box_header(file, end, file_len)?
                else {
                    break;
                };
                if &next_kind != b"mdat"
                    || !runs_inside(&moof, offset, (end + next_header, end + next_size))
                {
                    break;
                }
                scan.fragments.push(FragmentAt {
                    moof_offset: offset,
                    moof,
                });
                scan.valid_end = end + next_size;
                offset = end + next_size;
                continue;
            }
            _ => {}
        }
        scan.valid_end = end;
        offset = end;
    }
    Ok(scan)
}

/// Per-track tables gathered from the fragments.
#[derive(Debug, Default)]
struct Tables {
    first_dts: Option<u64>,
    end_dts: u64,
    durations: Vec<u32>,
    sizes: Vec<u32>,
    cts: Vec<i64>,
    sync: Vec<bool>,
    /// (file offset, samples) per chunk: one chunk per run.
    chunks: Vec<(u64, u32)>,
}

fn gather(moov: &Moov, track_id: u32, fragments: &[FragmentAt]) -> Tables {
    let trex = moov
        .mvex
        .as_ref()
        .and_then(|m| m.trex.iter().find(|t| t.track_id == track_id));
    let mut tables = Tables::default();
    for fragment in fragments {
        for traf in fragment
            .moof
            .traf
            .iter()
            .filter(|t| t.tfhd.track_id == track_id)
        {
            let base = traf.tfdt.as_ref().map(|t| t.base_media_decode_time);
            match (base, tables.first_dts) {
                (Some(base), None) => {
                    tables.first_dts = Some(base);
                    tables.end_dts = base;
                }
                (None, None) => tables.first_dts = Some(0),
                (Some(base), Some(_)) if base > tables.end_dts => {
                    // A hole between fragments: the previous sample lasts until this one.
                    if let Some(last) = tables.durations.last_mut() {
                        let gap = u32::try_from(base - tables.end_dts).unwrap_or(u32::MAX);
                        *last = last.saturating_add(gap);
                    }
                    tables.end_dts = base;
                }
                _ => {}
            }
            let default_duration = traf
                .tfhd
                .default_sample_duration
                .or(trex.map(|t| t.default_sample_duration))
                .unwrap_or(0);
            let default_size = traf
                .tfhd
                .default_sample_size
                .or(trex.map(|t| t.default_sample_size))
                .unwrap_or(0);
            let default_flags = traf
                .tfhd
                .default_sample_flags
                .or(trex.map(|t| t.default_sample_flags))
                .unwrap_or(0);
            for trun in &traf.trun {
                let offset = u64::try_from(trun.data_offset.unwrap_or(0)).unwrap_or(0);
                let count = u32::try_from(trun.samples.len()).unwrap_or(u32::MAX);
                tables
                    .chunks
                    .push((fragment.moof_offset.saturating_add(offset), count));
                for TrunEntry {
                    duration,
                    size,
                    flags,
                    cts,
                } in trun.samples.iter()
                {
                    let duration = duration.unwrap_or(default_duration);
                    tables.durations.push(duration);
                    tables.sizes.push(size.unwrap_or(default_size));
                    tables.cts.push(cts.unwrap_or(0));
                    let flags = flags.unwrap_or(default_flags);
                    tables.sync.push(flags & 0x0001_0000 == 0);
                    tables.end_dts = tables.end_dts.saturating_add(u64::from(duration));
                }
            }
        }
    }
    tables
}

fn run_length<T: PartialEq + Copy>(values: &[T]) -> Vec<(u32, T)> {
    let mut runs: Vec<(u32, T)> = Vec::new();
    for &value in values {
        match runs.last_mut() {
            Some((count, last)) if *last == value => *count += 1,
            _ => runs.push((1, value)),
        }
    }
    runs
}

fn to_movie(units: u64, timescale: u32) -> u64 {
    units.saturating_mul(u64::from(MOVIE_TIMESCALE)) / u64::from(timescale.max(1))
}

/// The part of the media a finalised file presents (clips): milliseconds from the decode time
/// of the first video sample (of the first sample, without video), and how long. Session time
/// in HLS (`EXT-X-PROGRAM-DATE-TIME`) counts the same way, from each segment's first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ms: u64,
    pub duration_ms: u64,
}

/// Builds the regular `moov` from the fragmented one and the fragments.
fn build_moov(
    init: &Moov,
    fragments: &[FragmentAt],
    window: Option<Window>,
) -> Result<Moov, FinalizeError> {
    let mut moov = init.clone();
    moov.mvex = None;
    let mut gathered = Vec::new();
    for trak in &moov.trak {
        let tables = gather(init, trak.tkhd.track_id, fragments);
        gathered.push(tables);
    }
    // The earliest first presentation time over all tracks is the movie's zero.
    let first_presentation = |trak: &mp4_atom::Trak, t: &Tables| -> Option<u64> {
        let first = t.first_dts?;
        let cts = u64::try_from(t.cts.first().copied().unwrap_or(0)).unwrap_or(0);
        Some(to_movie(
            first.saturating_add(cts),
            trak.mdia.mdhd.timescale,
        ))
    };
    let zero = moov
        .trak
        .iter()
        .zip(&gathered)
        .filter(|(_, t)| !t.sizes.is_empty())
        .filter_map(|(trak, t)| first_presentation(trak, t))
        .min()
        .unwrap_or(0);
    // For a window: its anchor, the first video decode time in movie units.
    let first_dts_movie = |trak: &mp4_atom::Trak, t: &Tables| {
        t.first_dts.map(|d| to_movie(d, trak.mdia.mdhd.timescale))
    };
    let anchor = moov
        .trak
        .iter()
        .zip(&gathered)
        .filter(|(trak, t)| {
            !t.sizes.is_empty() && trak.mdia.hdlr.handler == mp4_atom::FourCC::new(b"vide")
        })
        .find_map(|(trak, t)| first_dts_movie(trak, t))
        .or_else(|| {
            moov.trak
                .iter()
                .zip(&gathered)
                .filter_map(|(trak, t)| first_dts_movie(trak, t))
                .min()
        })
        .unwrap_or(0);
    let mut movie_duration = 0u64;
    let mut kept = Vec::new();
    for (mut trak, tables) in std::mem::take(&mut moov.trak).into_iter().zip(gathered) {
        if tables.sizes.is_empty() {
            continue;
        }
        let timescale = trak.mdia.mdhd.timescale;
        let media_duration = tables
            .durations
            .iter()
            .fold(0u64, |sum, &d| sum.saturating_add(u64::from(d)));
        let media_time = u64::try_from(tables.cts.first().copied().unwrap_or(0)).unwrap_or(0);
        let empty = first_presentation(&trak, &tables)
            .unwrap_or(zero)
            .saturating_sub(zero);
        // With a constant composition delay the presentation spans the media duration,
        // starting at the first sample's composition time.
        let mut shown = to_movie(media_duration, timescale);
        let (mut empty, mut media_time) = (empty, media_time);
        if let Some(window) = window {
            // Trim the track's presentation to the window: what lies before it is skipped
            // by starting later in the media, a track starting after it waits in an empty
            // edit, what lies after it is not shown.
            let starts_at = i128::from(first_presentation(&trak, &tables).unwrap_or(anchor))
                - i128::from(anchor);
            let offset = starts_at - i128::from(window.start_ms);
            let skip = u64::try_from(-offset).unwrap_or(0);
            empty = u64::try_from(offset).unwrap_or(0);
            media_time = media_time.saturating_add(
                skip.saturating_mul(u64::from(timescale)) / u64::from(MOVIE_TIMESCALE),
            );
            shown = shown
                .saturating_sub(skip)
                .min(window.duration_ms.saturating_sub(empty));
        }
        let mut entries = Vec::new();
        if empty > 0 {
            entries.push(ElstEntry {
                segment_duration: empty,
                media_time: None,
                media_rate: 1.into(),
            });
        }
        if empty > 0 || media_time > 0 || window.is_some() {
            entries.push(ElstEntry {
                segment_duration: shown,
                media_time: Some(media_time),
                media_rate: 1.into(),
            });
        }
        let needs_edit = !entries.is_empty();
        trak.edts = needs_edit.then_some(Edts {
            elst: Some(Elst { entries }),
        });
        trak.mdia.mdhd.duration = media_duration;
        trak.tkhd.duration = empty.saturating_add(shown);
        movie_duration = movie_duration.max(trak.tkhd.duration);

        let stbl = &mut trak.mdia.minf.stbl;
        stbl.stts = Stts {
            entries: run_length(&tables.durations)
                .into_iter()
                .map(|(sample_count, sample_delta)| SttsEntry {
                    sample_count,
                    sample_delta,
                })
                .collect(),
        };
        stbl.ctts = tables.cts.iter().any(|&c| c != 0).then(|| Ctts {
            entries: run_length(&tables.cts)
                .into_iter()
                .map(|(sample_count, sample_offset)| CttsEntry {
                    sample_count,
                    sample_offset,
                })
                .collect(),
        });
        stbl.stss = tables.sync.iter().any(|s| !s).then(|| Stss {
            entries: tables
                .sync
                .iter()
                .enumerate()
                .filter(|(_, s)| **s)
                .map(|(i, _)| u32::try_from(i + 1).unwrap_or(u32::MAX))
                .collect(),
        });
        stbl.stsz = Stsz {
            samples: StszSamples::Different {
                sizes: tables.sizes,
            },
        };
        let mut stsc = Vec::new();
        for (index, (_, count)) in tables.chunks.iter().enumerate() {
            if stsc
                .last()
                .is_none_or(|e: &StscEntry| e.samples_per_chunk != *count)
            {
                stsc.push(StscEntry {
                    first_chunk: u32::try_from(index + 1).unwrap_or(u32::MAX),
                    samples_per_chunk: *count,
                    sample_description_index: 1,
                });
            }
        }
        stbl.stsc = Stsc { entries: stsc };
        let offsets: Vec<u64> = tables.chunks.iter().map(|(o, _)| *o).collect();
        if offsets.iter().all(|&o| o <= u64::from(u32::MAX)) {
            stbl.stco = Some(Stco {
                entries: offsets
                    .iter()
                    .map(|&o| u32::try_from(o).unwrap_or(u32::MAX))
                    .collect(),
            });
            stbl.co64 = None;
        } else {
            stbl.stco = None;
            stbl.co64 = Some(Co64 { entries: offsets });
        }
        kept.push(trak);
    }
    if kept.is_empty() {
        return Err(FinalizeError::Empty("no samples in any fragment"));
    }
    moov.trak = kept;
    moov.mvhd.duration = movie_duration;
    Ok(moov)
}

/// The `moov` of a finalised file (for reading a recording back, e.g. to cut a clip).
pub fn final_moov<F: Read + Seek>(file: &mut F) -> Result<Moov, FinalizeError> {
    scan(file)?
        .final_moov
        .map(|(_, moov)| moov)
        .ok_or(FinalizeError::Empty("not a finalised file"))
}

/// Samples a regular `moov` lists, over all tracks.
pub fn sample_count(moov: &Moov) -> u64 {
    moov.trak
        .iter()
        .map(|t| match &t.mdia.minf.stbl.stsz.samples {
            StszSamples::Identical { count, .. } => u64::from(*count),
            StszSamples::Different { sizes } => sizes.len() as u64,
        })
        .sum()
}

fn rename_to_free<F: RecordingFile>(file: &mut F, offset: u64) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset + 4))?;
    file.write_all(b"free")
}

/// Finalises a fragmented recording in place (see the module docs); idempotent.
pub fn finalize<F: RecordingFile>(file: &mut F) -> Result<Finalized, FinalizeError> {
    finalize_window(file, None)
}

/// [`finalize`], presenting only `window` of the media (edit lists): a clip made of whole
/// segments starts at their first keyframe but is shown from the asked-for start.
pub fn finalize_window<F: RecordingFile>(
    file: &mut F,
    window: Option<Window>,
) -> Result<Finalized, FinalizeError> {
    let scan = scan(file)?;
    let (moov, truncated_bytes) = match (&scan.final_moov, &scan.init_moov) {
        // Finalised before; a crash may have left boxes to rename (below).
        (Some((_, moov)), _) => (moov.clone(), 0),
        (None, Some((_, init))) => {
            let moov = build_moov(init, &scan.fragments, window)?;
            file.truncate_to(scan.valid_end)?;
            let mut encoded = Vec::new();
            moov.encode(&mut encoded)?;
            file.seek(SeekFrom::Start(scan.valid_end))?;
            file.write_all(&encoded)?;
            file.sync_data()?;
            (moov, scan.file_len - scan.valid_end)
        }
        (None, None) => return Err(FinalizeError::Empty("no init segment")),
    };
    if let Some((init_offset, _)) = &scan.init_moov {
        for fragment in &scan.fragments {
            rename_to_free(file, fragment.moof_offset)?;
        }
        rename_to_free(file, *init_offset)?;
        file.sync_data()?;
    }
    Ok(Finalized {
        size_bytes: file.seek(SeekFrom::End(0))?,
        duration_secs: moov.mvhd.duration as f64 / f64::from(moov.mvhd.timescale.max(1)),
        samples: sample_count(&moov),
        truncated_bytes,
    })
}
