// Plays reelay's HLS playlists (CMAF: fMP4 media segments after an EXT-X-MAP init segment)
// with Media Source Extensions, so live and replay play in Chromium and Firefox without a
// plugin or a third-party player. Browsers that play HLS themselves (Safari) get the URL.
//
// What it does, in order: read the playlist, learn the codecs from the init segment, append
// the init segment and then media segments while less than BUFFER_AHEAD seconds are buffered;
// live starts three segments from the edge and re-reads the playlist every half target
// duration; a seek into unbuffered time fetches from the segment holding it; what lies more
// than BUFFER_BEHIND seconds behind the play head is removed.

const BUFFER_AHEAD = 20;
const BUFFER_BEHIND = 30;
const LIVE_START_SEGMENTS = 3;

/** Reads an HLS media playlist into its init URL, segments and flags. */
export function parsePlaylist(text, base) {
  const playlist = { segments: [], target: 2, sequence: 0, ended: false, vod: false };
  let duration = null;
  let date = null;
  let init = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#EXT-X-TARGETDURATION:")) {
      playlist.target = Number(line.slice(22)) || 2;
    } else if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) {
      playlist.sequence = Number(line.slice(22)) || 0;
    } else if (line.startsWith("#EXT-X-MAP:")) {
      const uri = line.match(/URI="([^"]+)"/);
      if (uri) init = new URL(uri[1], base).href;
    } else if (line.startsWith("#EXT-X-PROGRAM-DATE-TIME:")) {
      date = Date.parse(line.slice(25));
    } else if (line.startsWith("#EXTINF:")) {
      duration = parseFloat(line.slice(8));
    } else if (line === "#EXT-X-ENDLIST") {
      playlist.ended = true;
    } else if (line === "#EXT-X-PLAYLIST-TYPE:VOD") {
      playlist.vod = true;
    } else if (line && !line.startsWith("#")) {
      playlist.segments.push({
        url: new URL(line, base).href,
        init,
        duration: duration ?? playlist.target,
        date: Number.isNaN(date) ? null : date,
        seq: playlist.sequence + playlist.segments.length,
      });
      duration = null;
      date = null;
    }
  }
  return playlist;
}

/** The ISO BMFF boxes between `start` and `end`: `{ type, at, size }`, `at` at the box header. */
function* boxes(view, start, end) {
  let at = start;
  while (at + 8 <= end) {
    const size = view.getUint32(at);
    if (size < 8 || at + size > end) return;
    const type = String.fromCharCode(view.getUint8(at + 4), view.getUint8(at + 5), view.getUint8(at + 6), view.getUint8(at + 7));
    yield { type, at, size };
    at += size;
  }
}

/** Where each container box's children start, after its own fields. */
const CONTAINERS = { moov: 0, trak: 0, mdia: 0, minf: 0, stbl: 0, moof: 0, traf: 0, stsd: 8, avc1: 78, avc3: 78, hvc1: 78, hev1: 78, mp4a: 28 };

/** Every box below `start..end`, depth first, with the type of its parent. */
function* allBoxes(view, start = 0, end = view.byteLength, parent = "") {
  for (const box of boxes(view, start, end)) {
    yield { ...box, parent };
    if (box.type in CONTAINERS) yield* allBoxes(view, box.at + 8 + CONTAINERS[box.type], box.at + box.size, box.type);
  }
}

/** The RFC 6381 codecs of an fMP4 init segment ("avc1.64001f,mp4a.40.2"). */
export function codecsOf(buffer) {
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  const hex = (b) => b.toString(16).padStart(2, "0");
  const codecs = [];
  for (const { type, at, size, parent } of allBoxes(view)) {
    if (type === "avcC") codecs.push(`${parent}.${hex(bytes[at + 9])}${hex(bytes[at + 10])}${hex(bytes[at + 11])}`);
    else if (type === "hvcC") codecs.push(`${parent}.1.6.L${bytes[at + 20]}.B0`);
    else if (type === "esds") codecs.push(`mp4a.40.${audioObjectType(bytes, at + 12, at + size)}`);
  }
  return codecs.join(",");
}

/** The AAC audio object type in an esds box's descriptors (2, AAC-LC, if unreadable). */
function audioObjectType(bytes, start, end) {
  let at = start;
  const descriptor = () => {
    const tag = bytes[at++];
    let length = 0;
    for (let i = 0; i < 4 && at < end; i++) {
      const b = bytes[at++];
      length = (length << 7) | (b & 0x7f);
      if (!(b & 0x80)) break;
    }
    return { tag, length };
  };
  while (at < end) {
    const { tag, length } = descriptor();
    if (tag === 0x03) {
      const flags = bytes[at + 2];
      at += 3 + (flags & 0x80 ? 2 : 0) + (flags & 0x20 ? 1 + bytes[at + 3] : 0) + (flags & 0x40 ? 2 : 0);
    } else if (tag === 0x04) {
      at += 13;
    } else if (tag === 0x05) {
      const type = bytes[at] >> 3;
      return type === 31 ? 32 + (((bytes[at] & 7) << 3) | (bytes[at + 1] >> 5)) : type || 2;
    } else {
      at += length;
    }
  }
  return 2;
}

/** The first track's timescale from an init segment (moov/trak/mdia/mdhd). */
function timescaleOf(buffer) {
  const view = new DataView(buffer);
  for (const { type, at } of allBoxes(view)) {
    if (type === "mdhd") return view.getUint32(at + (view.getUint8(at + 8) === 1 ? 28 : 20));
  }
  return null;
}

/** The decode time of an fMP4 media segment's first sample, in seconds (moof/traf/tfdt). */
function startTimeOf(buffer, timescale) {
  const view = new DataView(buffer);
  if (!timescale) return null;
  for (const { type, at } of allBoxes(view)) {
    if (type !== "tfdt") continue;
    const time = view.getUint8(at + 8) === 1 ? Number(view.getBigUint64(at + 12)) : view.getUint32(at + 12);
    return time / timescale;
  }
  return null;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One playlist playing in one <video>. `stop()` ends it and frees the media source. */
export class HlsPlayer {
  /** `fromStart`: play a growing playlist from its first segment (a replay of a session still
   * live) instead of near its live edge. */
  constructor(video, url, { onError = () => {}, onStatus = () => {}, fromStart = false } = {}) {
    this.video = video;
    this.fromStart = fromStart;
    this.url = new URL(url, location.href).href;
    this.onError = onError;
    this.onStatus = onStatus;
    this.stopped = false;
    this.playlist = null;
    this.nextSeq = null;
    this.anchor = null; // { seq, time }: a fetched segment's media start, for seeking
    this.initUrl = null;
    this.timescale = null;
    this.started = false;
    this.wake = null;
  }

  /** Starts playing; resolves when playback has begun (or failed). */
  async start() {
    if (!window.MediaSource) {
      if (!this.video.canPlayType("application/vnd.apple.mpegurl")) {
        return this.fail("this browser cannot play HLS (no Media Source Extensions)");
      }
      this.video.src = this.url;
      return this.video.play().catch(() => this.onStatus("paused: press play"));
    }
    this.source = new MediaSource();
    this.objectUrl = URL.createObjectURL(this.source);
    this.video.src = this.objectUrl;
    await new Promise((resolve) => this.source.addEventListener("sourceopen", resolve, { once: true }));
    this.onSeeking = () => this.seekTo(this.video.currentTime);
    this.video.addEventListener("seeking", this.onSeeking);
    this.run().catch((e) => this.fail(e.message || String(e)));
  }

  /** Stops fetching and detaches from the video element. */
  stop() {
    this.stopped = true;
    if (this.wake) this.wake();
    if (this.onSeeking) this.video.removeEventListener("seeking", this.onSeeking);
    this.video.removeAttribute("src");
    this.video.load();
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
  }

  /** Whether the playlist is still growing (a live stream or a replay of one). */
  get live() {
    return Boolean(this.playlist && !this.playlist.ended && !this.playlist.vod);
  }

  /** The wall-clock time (ms since the epoch) of the frame at media time `time`, if the
   * playlist carries program date times. */
  dateAt(time) {
    const segment = this.segmentAt(time);
    if (!segment || segment.date === null) return null;
    return segment.date + (time - this.segmentStart(segment)) * 1000;
  }

  /** The first segment of the current playlist. */
  get firstSegment() {
    return this.playlist?.segments[0] ?? null;
  }

  fail(message) {
    this.onError(message);
  }

  segmentStart(segment) {
    if (!this.anchor) return 0;
    const list = this.playlist.segments;
    let time = this.anchor.time;
    if (segment.seq >= this.anchor.seq) {
      for (const s of list) if (s.seq >= this.anchor.seq && s.seq < segment.seq) time += s.duration;
    } else {
      for (const s of list) if (s.seq >= segment.seq && s.seq < this.anchor.seq) time -= s.duration;
    }
    return time;
  }

  segmentAt(time) {
    if (!this.playlist) return null;
    let found = this.playlist.segments[0] ?? null;
    for (const segment of this.playlist.segments) {
      if (this.segmentStart(segment) <= time + 0.001) found = segment;
      else break;
    }
    return found;
  }

  seekTo(time) {
    if (!this.playlist || this.isBuffered(time)) return;
    const segment = this.segmentAt(time);
    if (segment) this.nextSeq = segment.seq;
    if (this.wake) this.wake();
  }

  isBuffered(time) {
    const ranges = this.buffer?.buffered;
    if (!ranges) return false;
    for (let i = 0; i < ranges.length; i++) {
      if (ranges.start(i) - 0.1 <= time && time < ranges.end(i)) return true;
    }
    return false;
  }

  bufferedAhead() {
    const time = this.video.currentTime;
    const ranges = this.buffer?.buffered;
    if (!ranges) return 0;
    for (let i = 0; i < ranges.length; i++) {
      if (ranges.start(i) - 0.1 <= time && time < ranges.end(i)) return ranges.end(i) - time;
    }
    return 0;
  }

  async fetchBytes(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${new URL(url).pathname}: HTTP ${response.status}`);
    return response.arrayBuffer();
  }

  async refresh() {
    const response = await fetch(this.url, { cache: "no-store" });
    if (!response.ok) throw new Error(`playlist: HTTP ${response.status}`);
    this.playlist = parsePlaylist(await response.text(), this.url);
    this.refreshedAt = performance.now();
    const segments = this.playlist.segments;
    if (!segments.length) return;
    const first = segments[0].seq;
    const last = segments[segments.length - 1].seq;
    if (this.nextSeq === null || this.nextSeq < first) {
      // Live: near the edge; a replay or VOD: from its start.
      this.nextSeq = this.live && !this.fromStart ? Math.max(first, last - LIVE_START_SEGMENTS + 1) : first;
    }
  }

  append(data) {
    return new Promise((resolve, reject) => {
      const done = () => {
        this.buffer.removeEventListener("error", failed);
        resolve();
      };
      const failed = () => {
        this.buffer.removeEventListener("updateend", done);
        reject(new Error("the browser refused a segment"));
      };
      this.buffer.addEventListener("updateend", done, { once: true });
      this.buffer.addEventListener("error", failed, { once: true });
      this.buffer.appendBuffer(data);
    });
  }

  async appendInit(url) {
    const init = await this.fetchBytes(url);
    if (!this.buffer) {
      const codecs = codecsOf(init);
      this.codecs = codecs;
      const type = `video/mp4; codecs="${codecs}"`;
      if (!MediaSource.isTypeSupported(type)) throw new Error(`this browser cannot play ${codecs || "these codecs"}`);
      this.buffer = this.source.addSourceBuffer(type);
    }
    this.timescale = timescaleOf(init);
    await this.append(init);
    this.initUrl = url;
  }

  async appendSegment(segment) {
    if (segment.init && segment.init !== this.initUrl) await this.appendInit(segment.init);
    const data = await this.fetchBytes(segment.url);
    const start = startTimeOf(data, this.timescale);
    if (start !== null) this.anchor = { seq: segment.seq, time: start };
    try {
      await this.append(data);
    } catch (e) {
      if (this.buffer.buffered.length) {
        await this.trim(0);
        await this.append(data);
      } else throw e;
    }
    if (!this.started && this.buffer.buffered.length) {
      this.started = true;
      this.video.currentTime = this.buffer.buffered.start(0);
      this.video.play().catch(() => this.onStatus("paused: press play"));
    }
  }

  /** Gives a replay's seek bar its length: the end of the last listed segment (only ever
   * growing, so nothing buffered is cut off). Live playback keeps an open-ended duration. */
  updateDuration() {
    const last = this.playlist?.segments.at(-1);
    if (!last || !this.anchor || (this.live && !this.fromStart)) return;
    if (this.buffer.updating || this.source.readyState !== "open") return;
    const end = this.segmentStart(last) + last.duration;
    if (Number.isFinite(this.source.duration) && this.source.duration >= end) return;
    try {
      this.source.duration = end;
    } catch {
      // A duration below what is buffered is refused; the next refresh tries again.
    }
  }

  async trim(keepBehind) {
    const time = this.video.currentTime;
    const ranges = this.buffer.buffered;
    if (!ranges.length || ranges.start(0) >= time - keepBehind) return;
    await new Promise((resolve) => {
      this.buffer.addEventListener("updateend", resolve, { once: true });
      this.buffer.remove(0, Math.max(0, time - keepBehind));
    });
  }

  async run() {
    await this.refresh();
    while (!this.stopped) {
      const playlist = this.playlist;
      if (this.live && performance.now() - this.refreshedAt > (playlist.target * 1000) / 2) {
        await this.refresh();
        continue;
      }
      const segment = this.playlist.segments.find((s) => s.seq === this.nextSeq);
      if (segment && this.bufferedAhead() < BUFFER_AHEAD) {
        await this.appendSegment(segment);
        this.updateDuration();
        if (this.nextSeq === segment.seq) this.nextSeq = segment.seq + 1;
        continue;
      }
      if (this.live && !this.fromStart && this.started && this.buffer.buffered.length) {
        // Fallen behind the live edge (a stalled tab): catch up.
        const end = this.buffer.buffered.end(this.buffer.buffered.length - 1);
        if (end - this.video.currentTime > playlist.target * 4) this.video.currentTime = end - playlist.target;
      }
      const last = playlist.segments[playlist.segments.length - 1];
      if (!this.live && last && this.nextSeq > last.seq && this.source.readyState === "open" && this.buffer && !this.buffer.updating) {
        // Appending again (after a seek back) reopens the source by itself.
        this.source.endOfStream();
      }
      if (this.buffer && !this.buffer.updating) await this.trim(BUFFER_BEHIND);
      await new Promise((resolve) => {
        this.wake = resolve;
        sleep(250).then(resolve);
      });
      this.wake = null;
    }
  }
}
