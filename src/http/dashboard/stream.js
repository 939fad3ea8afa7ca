// The stream page: header, quick actions (watch, ingest instructions, stop & lock, unlock,
// delete) and the Overview, Live Processing and Code Snippets tabs. The header and the
// processing status refresh every few seconds; players and forms are left alone meanwhile.
import { api, canEdit, local } from "./api.js";
import {
  h, stateBadge, groupLabel, formatDate, formatSize, formatDuration, copyField,
  confirmAction, notify, guarded, tabs,
} from "./ui.js";
import { HlsPlayer } from "./player.js";

const REFRESH_MS = 4000;
const TABS = [["overview", "Overview"], ["processing", "Live Processing"], ["snippets", "Code Snippets"]];

/** Inputs for the four processing entries; `entries` is a stream's current list. */
export function processingFields(entries, withSync) {
  const find = (id) => entries.find((e) => e.id === id);
  const number = (id, value, attrs) => h("input", { id, type: "number", step: "1", value: value ?? "", ...attrs });
  const row = (id, label, inputs) => {
    const on = h("input", { type: "checkbox", id: `proc-${id}`, checked: Boolean(find(id)) });
    return { id, on, inputs, element: h("div.proc-row", {}, h("div.check", {}, on, h("label", { for: `proc-${id}` }, label)), h("div.proc-inputs", {}, inputs.map(([, , el]) => el))) };
  };
  const labelled = (id, label, input) => [id, label, h("span.inline-field", {}, h("label", { for: input.id }, label), input)];
  const rec = find("rec");
  const replay = find("replay");
  const thumbs = find("thumbs");
  const clip = find("motionclip");
  const rows = [
    row("rec", "Record to MP4", [labelled("duration", "New file every (s, empty = one per session)", number("proc-rec-duration", rec?.duration, { min: 1, max: 86400 }))]),
    row("replay", "HLS replay", [labelled("duration", "Keep last (s, empty = whole session)", number("proc-replay-duration", replay?.duration, { min: 1, max: 86400 }))]),
    row("thumbs", "Thumbnails", [labelled("interval", "Every (s)", number("proc-thumbs-interval", thumbs?.interval ?? 30, { min: 10, max: 3600, required: true }))]),
    row("motionclip", "Motion clips (GIF)", [
      labelled("interval", "Every (s)", number("proc-motionclip-interval", clip?.interval ?? 30, { min: 10, max: 3600, required: true })),
      labelled("duration", "Length (s)", number("proc-motionclip-duration", clip?.duration ?? 3, { min: 1, max: 60, required: true })),
    ]),
  ];
  const sync = withSync ? h("input", { type: "checkbox", id: "proc-sync", checked: true }) : null;
  const element = h("div.proc", {}, rows.map((r) => r.element),
    sync ? h("div.check", {}, sync, h("label", { for: "proc-sync" }, "Sync settings across profiles")) : null);
  return { rows, sync, element };
}

/** The processing list the fields describe (the API checks the ranges and names a field). */
export function readProcessing(fields) {
  const list = [];
  for (const row of fields.rows) {
    if (!row.on.checked) continue;
    const entry = { id: row.id };
    for (const [name, , wrapper] of row.inputs) {
      const value = wrapper.querySelector("input").value.trim();
      entry[name] = value === "" ? null : Number(value);
    }
    list.push(entry);
  }
  return list;
}

/** This stream's own entry in `playout.rtmp` (processing, status, profile). */
const ownPlayout = (stream) => stream.playout.rtmp.find((p) => p.id === stream.id) ?? stream.playout.rtmp[0];
const fileName = (url) => decodeURIComponent(new URL(url, location.href).pathname.split("/").pop());
/** The server's public base URL, from a URL it handed out (for snippets other sites use). */
const publicBase = (stream) => {
  const hls = stream.playout.hls[0]?.url;
  return hls ? hls.slice(0, hls.indexOf("/live/")) : location.origin;
};

export async function renderStream(main, id, params) {
  let stream = await api.getStream(id);
  let sessions = (await api.sessions(id)).items;
  let tab = TABS.some(([key]) => key === params.get("tab")) ? params.get("tab") : "overview";
  let player = null;
  const editable = () => canEdit() && stream.state !== "deleted";

  const head = h("div.stream-head");
  const actions = h("div.actions.quick", { "aria-label": "Actions" });
  const ingestPanel = h("section.card.ingest", { id: "ingest-panel", hidden: true, "aria-label": "Ingest instructions" });
  const panel = h("section", { id: "tabpanel", role: "tabpanel" });
  const tabStrip = h("div");
  main.replaceChildren(h("p", {}, h("a", { href: "#/streams" }, "← Streams")), head, actions, ingestPanel, tabStrip, panel);

  function renderHead() {
    head.replaceChildren(
      h("h1", {}, stream.ingest.rtmp.streamname, " ", stateBadge(stream.state)),
      h("dl.facts", {},
        h("dt", {}, "Created"), h("dd", {}, formatDate(stream.created_at)),
        h("dt", {}, "Updated"), h("dd", {}, formatDate(stream.updated_at)),
        h("dt", {}, "Group"), h("dd", {}, h("span.badge.group", {}, groupLabel(stream))),
        h("dt", {}, "ID"), h("dd.mono", { id: "stream-id" }, stream.id)));
    const name = stream.ingest.rtmp.streamname;
    actions.replaceChildren(...[
      h("a.button", { href: `/watch?name=${encodeURIComponent(name)}`, target: "_blank", rel: "noopener", id: "action-watch" }, "Watch"),
      h("button.secondary", {
        type: "button", id: "action-ingest", "aria-expanded": String(!ingestPanel.hidden), "aria-controls": "ingest-panel",
        onclick: (e) => {
          ingestPanel.hidden = !ingestPanel.hidden;
          e.currentTarget.setAttribute("aria-expanded", String(!ingestPanel.hidden));
        },
      }, "Ingest instructions"),
      editable() && ["live", "created", "ended"].includes(stream.state)
        ? h("button.danger", { type: "button", id: "action-stop", onclick: () => act("stop") }, "Stop & lock") : null,
      editable() && stream.state === "locked"
        ? h("button.secondary", { type: "button", id: "action-unlock", onclick: () => act("unlock") }, "Unlock") : null,
      editable() ? h("button.danger", { type: "button", id: "action-delete", onclick: () => act("delete") }, "Delete") : null,
    ].filter(Boolean));
    const url = stream.ingest.rtmp.url;
    ingestPanel.replaceChildren(
      h("h2", {}, "Ingest with OBS"),
      h("p", {}, "Settings → Stream: Service ", h("strong", {}, "Custom…"), ", then:"),
      copyField("Server", url),
      copyField("Stream Key", name),
      h("p.muted", {}, "To record the session as MP4 too, use the server ", h("code", {}, url.replace(/\/live$/, "/rec")),
        ". OBS output: H.264 (x264), keyframe interval 2 s, AAC audio."),
      copyField("ffmpeg", `ffmpeg -re -i input.mp4 -c:v libx264 -g 60 -c:a aac -f flv ${url}/${name}`));
  }

  async function act(kind) {
    const words = {
      stop: ["Stop & lock this stream?", "A publisher is disconnected now, and publishing is refused until the stream is unlocked.", "Stop & lock"],
      unlock: null,
      delete: ["Delete this stream?", "The stream is hidden from lists and publishing is refused. Its recordings and pictures are kept.", "Delete"],
    }[kind];
    if (words && !(await confirmAction(...words))) return;
    const changed = await guarded(() => (kind === "stop" ? api.stop(id) : kind === "unlock" ? api.unlock(id) : api.remove(id)));
    if (!changed) return;
    notify({ stop: "Stopped and locked.", unlock: "Unlocked.", delete: "Deleted." }[kind]);
    await refresh(true);
  }

  function stopPlayer() {
    if (player) player.stop();
    player = null;
  }

  function selectTab(key) {
    tab = key;
    history.replaceState(null, "", `#/stream/${id}?tab=${key}`);
    const hadFocus = tabStrip.contains(document.activeElement);
    renderTabs();
    renderPanel();
    // The strip is redrawn: keep keyboard focus on the selected tab.
    if (hadFocus) document.getElementById(`tab-${key}`)?.focus();
  }

  function renderTabs() {
    tabStrip.replaceChildren(tabs(TABS, tab, selectTab));
    panel.setAttribute("aria-labelledby", `tab-${tab}`);
  }

  function vodTable(assets) {
    if (!assets.length) return h("p.muted", {}, "No recordings yet.");
    return h("div.table-wrap", {}, h("table.assets.vod", {},
      h("thead", {}, h("tr", {}, ["Session date", "Name", "Size", "Duration", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, assets.map((a) => h("tr", {},
        h("td", {}, formatDate(sessionStart(a.session) ?? a.created_at)),
        h("td.mono", {}, fileName(a.url)),
        h("td", {}, formatSize(a.size)),
        h("td", {}, formatDuration(a.duration)),
        h("td", {}, h("a", { href: local(a.url), download: fileName(a.url) }, "Download")))))));
  }

  const sessionStart = (sessionId) => sessions.find((s) => s.id === sessionId)?.started_at;

  function tagEditor() {
    const tags = [...stream.tags];
    const list = h("ul.tags", { "aria-label": "Tags" });
    const draw = () => list.replaceChildren(...tags.map((t, i) => h("li.tag", {}, t,
      editable() ? h("button.remove", { type: "button", "aria-label": `Remove tag ${t}`, onclick: () => { tags.splice(i, 1); draw(); } }, "×") : null)));
    draw();
    if (!editable()) return h("div", {}, stream.tags.length ? list : h("p.muted", {}, "No tags."));
    const input = h("input", { id: "tag-new", type: "text", placeholder: "new tag", maxlength: "64" });
    const add = () => {
      const value = input.value.trim();
      if (value && !tags.includes(value)) tags.push(value);
      input.value = "";
      draw();
    };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); add(); } });
    return h("div.tag-editor", {}, list,
      h("div.inline", {}, h("label.sr-only", { for: "tag-new" }, "New tag"), input,
        h("button.secondary", { type: "button", onclick: add }, "Add"),
        h("button", {
          type: "button", id: "tags-save",
          onclick: async () => {
            const changed = await guarded(() => api.setTags(id, tags));
            if (changed) { stream = changed; notify("Tags saved."); }
          },
        }, "Save tags")));
  }

  function overview() {
    const name = stream.ingest.rtmp.streamname;
    return [
      h("section.card", {}, h("h2", {}, "Ingest"),
        copyField("RTMP URL", stream.ingest.rtmp.url), copyField("Streamname", name)),
      h("section.card", {}, h("h2", {}, "Playout"),
        stream.playout.rtmp.map((p) => copyField(p.index ? `RTMP ${p.profile ?? `profile ${p.index}`}` : "RTMP", `${p.url}/${p.streamname}`)),
        stream.playout.hls.map((p) => copyField("HLS", p.url)),
        copyField("Player page", `${publicBase(stream)}/watch?name=${encodeURIComponent(name)}`),
        stream.playout.rtmp.length > 1 ? groupTable() : null),
      h("section.card", {}, h("h2", {}, "Tags"), tagEditor()),
      h("section.card", {}, h("h2", {}, "VOD"), vodTable(stream.playout.web)),
    ];
  }

  function groupTable() {
    return h("div.table-wrap", {}, h("table.group", {},
      h("caption", {}, groupLabel(stream)),
      h("thead", {}, h("tr", {}, ["Index", "Profile", "Streamname", "ID"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, stream.playout.rtmp.map((p) => h("tr", {},
        h("td", {}, String(p.index)), h("td", {}, p.profile ?? "passthrough"), h("td.mono", {}, p.streamname),
        h("td.mono", {}, h("a", { href: `#/stream/${p.id}` }, p.id)))))));
  }

  function statusTable() {
    const status = ownPlayout(stream).status || {};
    const names = Object.keys(status);
    if (!names.length) return h("p.muted", { id: "status-table" }, "No processing has run yet (it starts with the next ingest).");
    return h("div.table-wrap", { id: "status-table" }, h("table.status-table", {},
      h("thead", {}, h("tr", {}, ["Output", "State", "Last success", "Errors", "Skipped", "Last error"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, names.map((n) => {
        const s = status[n];
        return h("tr", { dataset: { sink: n } },
          h("td", {}, n), h("td", {}, h(`span.badge.sink-${s.state}`, {}, s.state), s.detail ? h("div.muted", {}, s.detail) : null),
          h("td", {}, formatDate(s.last_success)), h("td", {}, String(s.errors)), h("td", {}, String(s.skipped)),
          h("td", {}, s.last_error ? `${formatDate(s.last_error.at)}: ${s.last_error.message}` : "—"));
      }))));
  }

  function preview(kind, label) {
    const picture = stream.playout[kind][0];
    if (!picture) return h("figure.preview", { id: `preview-${kind}` }, h("div.placeholder", {}, `No ${label.toLowerCase()} yet`), h("figcaption", {}, label));
    const img = h("img", { src: `${local(picture.url)}?t=${Date.parse(picture.updated_at) || Date.now()}`, alt: `${label} of ${picture.streamname}`, loading: "lazy" });
    return h("figure.preview", { id: `preview-${kind}` }, img,
      h("figcaption", {}, `${label} · ${formatDate(picture.updated_at)} `,
        h("button.secondary.small", { type: "button", onclick: () => { img.src = `${local(picture.url)}?t=${Date.now()}`; } }, "Refresh")),
      picture.history?.length > 1
        ? h("details", {}, h("summary", {}, `History (${picture.history.length})`),
          h("div.history", {}, picture.history.map((u) => h("a", { href: local(u), target: "_blank", rel: "noopener" }, h("img", { src: local(u), alt: fileName(u), loading: "lazy" })))))
        : null);
  }

  function settingsForm() {
    const own = ownPlayout(stream);
    const group = stream.playout.rtmp.length > 1;
    const fields = processingFields(own.processing || [], group);
    if (!editable()) {
      fields.element.querySelectorAll("input").forEach((i) => { i.disabled = true; });
      return h("div", {}, fields.element);
    }
    return h("form.settings", {
      onsubmit: async (event) => {
        event.preventDefault();
        const changed = await guarded(() => api.setProcessing(id, readProcessing(fields), fields.sync?.checked ?? false));
        if (!changed) return;
        stream = changed;
        notify(changed.notice || "Processing saved.");
      },
    }, fields.element, h("button", { type: "submit", id: "processing-save" }, "Save processing"));
  }

  /** The in-page player for a replay, with Clip & Share controls when `clipping`. */
  function replayPlayer(replay, clipping, holder) {
    stopPlayer();
    const video = h("video", { id: "replay-video", controls: true, playsinline: true, "aria-label": "Replay player" });
    // The property, not the attribute (which only sets the default): browsers let muted
    // video start without a further click; the controls unmute.
    video.muted = true;
    const state = h("p.muted", { role: "status" });
    player = new HlsPlayer(video, local(replay.url), { fromStart: true, onError: (e) => { state.textContent = e; }, onStatus: (s) => { state.textContent = s; } });
    const current = player;
    window.reelayReplayPlayer = player;
    player.start();
    const started = sessions.find((s) => s.id === replay.session)?.started_at;
    // Seconds into the session, as the clip API counts them: from the replay's first
    // segment when the playlist still starts at the session's start, else from the session.
    const sessionSeconds = () => {
      const date = current.dateAt(video.currentTime);
      const first = current.firstSegment;
      const origin = first?.seq === 0 && first.date !== null ? first.date : Date.parse(started);
      return date === null ? video.currentTime : Math.max(0, (date - origin) / 1000);
    };
    const parts = [h("h3", {}, `${clipping ? "Clip & Share" : "Rewatch"} · ${formatDate(started ?? replay.created_at)}`), video, state];
    if (clipping) {
      const start = h("input", { id: "clip-start", type: "number", step: "0.1", min: "0", value: "0" });
      const end = h("input", { id: "clip-end", type: "number", step: "0.1", min: "0", value: "10" });
      const result = h("div", { id: "clip-result" });
      parts.push(h("form.clip", {
        onsubmit: async (event) => {
          event.preventDefault();
          const clip = await guarded(() => api.clip(id, replay.session, Number(start.value), Number(end.value)));
          if (!clip) return;
          result.replaceChildren(copyField("Clip link", clip.url),
            h("a", { href: local(clip.url), target: "_blank", rel: "noopener", id: "clip-open" }, `Open clip (${formatDuration(clip.duration)}, ${formatSize(clip.size)})`));
          notify("Clip ready.");
        },
      },
      h("span.inline-field", {}, h("label", { for: "clip-start" }, "Start (s)"), start),
      h("button.secondary", { type: "button", id: "clip-mark-start", onclick: () => { start.value = sessionSeconds().toFixed(1); } }, "Set start here"),
      h("span.inline-field", {}, h("label", { for: "clip-end" }, "End (s)"), end),
      h("button.secondary", { type: "button", id: "clip-mark-end", onclick: () => { end.value = sessionSeconds().toFixed(1); } }, "Set end here"),
      editable() ? h("button", { type: "submit", id: "clip-make" }, "Make clip") : null,
      result));
    }
    parts.push(h("button.secondary", { type: "button", onclick: () => { stopPlayer(); holder.replaceChildren(); } }, "Close player"));
    holder.replaceChildren(h("div.card.player", {}, parts));
    video.focus();
  }

  function replayTable(holder) {
    const replays = stream.playout.replay;
    if (!replays.length) return h("p.muted", {}, "No replays yet (add HLS replay above; it starts with the next ingest).");
    return h("div.table-wrap", {}, h("table.assets.replays", {},
      h("thead", {}, h("tr", {}, ["Session date", "Playlist", "", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, replays.map((r) => h("tr", { dataset: { session: r.session } },
        h("td", {}, formatDate(sessionStart(r.session) ?? r.created_at)),
        h("td", {}, copyField("Playlist URL", r.url)),
        h("td", {}, h("button.secondary", { type: "button", "data-rewatch": r.session, onclick: () => replayPlayer(r, false, holder) }, "Rewatch")),
        h("td", {}, h("button.secondary", { type: "button", "data-clip": r.session, onclick: () => replayPlayer(r, true, holder) }, "Clip & Share")))))));
  }

  function clipsTable() {
    const clips = stream.playout.clips || [];
    if (!clips.length) return null;
    return h("div.table-wrap", {}, h("table.assets.clips", {},
      h("caption", {}, "Clips"),
      h("thead", {}, h("tr", {}, ["Made", "Range", "Size", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, clips.map((c) => h("tr", {},
        h("td", {}, formatDate(c.created_at)),
        h("td", {}, `${formatDuration(c.start)} – ${formatDuration(c.end)}`),
        h("td", {}, formatSize(c.size)),
        h("td", {}, h("a", { href: local(c.url), target: "_blank", rel: "noopener" }, "Open")))))));
  }

  function processing() {
    const holder = h("div", { id: "replay-player" });
    return [
      h("section.card", {}, h("h2", {}, "Previews"),
        h("div.previews", {}, preview("thumbnails", "Thumbnail"), preview("motionclip", "Motion clip"))),
      h("section.card", {}, h("h2", {}, "Status"), statusTable()),
      h("section.card", {}, h("h2", {}, "Settings"), settingsForm()),
      h("section.card", {}, h("h2", {}, "Replay sessions"), replayTable(holder), holder, clipsTable()),
      h("section.card", {}, h("h2", {}, "Recordings"), vodTable(stream.playout.web)),
    ];
  }

  function snippets() {
    const base = publicBase(stream);
    const name = stream.ingest.rtmp.streamname;
    const watch = `${base}/watch?name=${encodeURIComponent(name)}`;
    const iframe = `<iframe src="${watch}" width="640" height="360" allow="autoplay; fullscreen" allowfullscreen title="${name}"></iframe>`;
    const html = [
      `<video id="reelay-${name}" controls muted autoplay playsinline width="640"></video>`,
      `<script type="module">`,
      `  import { HlsPlayer } from "${base}/ui/player.js";`,
      `  new HlsPlayer(document.getElementById("reelay-${name}"), "${base}/live/${name}/index.m3u8").start();`,
      `</script>`,
    ].join("\n");
    const block = (label, text, id) => h("div.snippet", {},
      h("h2", {}, label), h("pre", { id }, h("code", {}, text)), copyField(label, text));
    return [
      h("section.card", {}, block("iframe snippet", iframe, "snippet-iframe"),
        h("p.muted", {}, "Plays the live stream (HLS) in any page; the player page needs no API key.")),
      h("section.card", {}, block("HTML snippet", html, "snippet-html"),
        h("p.muted", {}, "The same player without an iframe: a video element and reelay's player module (no other library).")),
    ];
  }

  function renderPanel() {
    stopPlayer();
    const content = { overview, processing, snippets }[tab]();
    panel.replaceChildren(...content.filter(Boolean));
  }

  /** Reloads the stream; the header always, the panel's status and previews when `full`. */
  async function refresh(full = false) {
    const fresh = await guarded(() => api.getStream(id));
    if (!fresh) return;
    const changed = JSON.stringify(fresh) !== JSON.stringify(stream);
    stream = fresh;
    if (!changed && !full) return;
    sessions = (await guarded(() => api.sessions(id)))?.items ?? sessions;
    renderHead();
    if (full) return renderPanel();
    if (tab === "processing") {
      const table = panel.querySelector("#status-table");
      if (table) table.replaceWith(statusTable());
      for (const kind of ["thumbnails", "motionclip"]) {
        const figure = panel.querySelector(`#preview-${kind}`);
        if (figure && !figure.querySelector("details[open]")) figure.replaceWith(preview(kind, kind === "thumbnails" ? "Thumbnail" : "Motion clip"));
      }
    }
  }

  renderHead();
  renderTabs();
  renderPanel();
  const timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  return () => {
    clearInterval(timer);
    stopPlayer();
  };
}
