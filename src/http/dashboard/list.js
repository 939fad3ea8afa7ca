// The stream list: filters (state, tags with suggestions, date range, group display),
// search by exact id or streamname, pagination, the create-stream form. Filters live in the
// URL (#/streams?state=live&page=2), so a filtered list can be bookmarked and Back works.
import { api, canEdit } from "./api.js";
import { h, stateBadge, groupLabel, formatDate, guarded, notify } from "./ui.js";
import { processingFields, readProcessing } from "./stream.js";

const STATES = [["all", "All states"], ["live", "Live"], ["created", "Created"], ["ended", "Ended"], ["locked", "Locked"], ["deleted", "Deleted"]];
const RANGES = [["", "Any time"], ["today", "Today"], ["yesterday", "Yesterday"], ["week", "This Week"], ["month", "This Month"], ["pastmonth", "Past Month"], ["last3", "Last 3 Months"]];
const PAGE_SIZES = ["25", "50", "100", "150"];
const PROFILES = ["vtrans2-1280x720x2500x30", "vtrans2-852x480x800x25", "vtrans2-640x360x500x25"];
const REFRESH_MS = 5000;

/** `from`/`to` (RFC 3339, `to` exclusive) of a named range, in the browser's time zone. */
export function dateRange(name, now = new Date()) {
  const day = (offset, base = now) => new Date(base.getFullYear(), base.getMonth(), base.getDate() + offset);
  const tomorrow = day(1);
  switch (name) {
    case "today": return [day(0), tomorrow];
    case "yesterday": return [day(-1), day(0)];
    case "week": return [day(-((now.getDay() + 6) % 7)), tomorrow]; // weeks start on Monday
    case "month": return [new Date(now.getFullYear(), now.getMonth(), 1), tomorrow];
    case "pastmonth": return [new Date(now.getFullYear(), now.getMonth() - 1, 1), new Date(now.getFullYear(), now.getMonth(), 1)];
    case "last3": return [new Date(now.getFullYear(), now.getMonth() - 3, now.getDate()), tomorrow];
    default: return [null, null];
  }
}

function select(id, label, options, value) {
  return [
    h("label", { for: id }, label),
    h("select", { id, name: id }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))),
  ];
}

export async function renderList(main, params) {
  const filters = {
    state: params.get("state") || "all",
    tags: params.get("tags") || "",
    range: params.get("range") || "",
    groups: params.get("groups") === "true",
    q: params.get("q") || "",
    page: Number(params.get("page")) || 1,
    per_page: PAGE_SIZES.includes(params.get("per_page")) ? params.get("per_page") : "25",
  };
  const knownTags = new Set();
  const expanded = new Set();
  let lastAnswer = "";

  const tagInput = h("input", { id: "filter-tags", type: "text", list: "tag-suggestions", value: filters.tags, placeholder: "tag1, tag2", autocomplete: "off" });
  const suggestions = h("datalist", { id: "tag-suggestions" });
  const search = h("input", { id: "filter-q", type: "search", value: filters.q, placeholder: "exact id or streamname" });
  const groups = h("input", { id: "filter-groups", type: "checkbox", checked: filters.groups });
  const toolbar = h("form.filters", { role: "search", onsubmit: (e) => { e.preventDefault(); apply(); } },
    h("div.field", {}, ...select("filter-state", "State", STATES, filters.state)),
    h("div.field", {}, h("label", { for: "filter-tags" }, "Tags"), tagInput, suggestions),
    h("div.field", {}, ...select("filter-range", "Created", RANGES, filters.range)),
    h("div.field", {}, h("label", { for: "filter-q" }, "Search"), search),
    h("div.field.check", {}, groups, h("label", { for: "filter-groups" }, "Group streams")),
    h("div.field", {}, ...select("filter-per-page", "Per page", PAGE_SIZES.map((n) => [n, n]), filters.per_page)),
    h("button", { type: "submit" }, "Apply"));
  for (const id of ["filter-state", "filter-range", "filter-per-page", "filter-groups"]) {
    toolbar.querySelector(`#${id}`).addEventListener("change", () => apply());
  }
  tagInput.addEventListener("input", () => suggest());

  const table = h("table.streams", {},
    h("caption.sr-only", {}, "Streams"),
    h("thead", {}, h("tr", {}, ["State", "ID", "Streamname", "Group", "Last update", "Tags"].map((t) => h("th", { scope: "col" }, t)))));
  const body = h("tbody");
  table.append(body);
  const summary = h("p.summary", { id: "list-summary", "aria-live": "polite" });
  const prev = h("button.secondary", { type: "button", id: "page-prev", onclick: () => { filters.page -= 1; load(true); } }, "Previous");
  const next = h("button.secondary", { type: "button", id: "page-next", onclick: () => { filters.page += 1; load(true); } }, "Next");
  const pager = h("nav.pager", { "aria-label": "Pages" }, prev, summary, next);

  const header = h("div.page-head", {}, h("h1", {}, "Streams"),
    canEdit() ? h("button", { type: "button", id: "new-stream", onclick: () => openCreate() }, "New stream") : null);
  main.replaceChildren(header, toolbar, h("div.table-wrap", {}, table), pager);

  function apply() {
    filters.state = toolbar.querySelector("#filter-state").value;
    filters.range = toolbar.querySelector("#filter-range").value;
    filters.per_page = toolbar.querySelector("#filter-per-page").value;
    filters.tags = tagInput.value.split(",").map((t) => t.trim()).filter(Boolean).join(",");
    filters.q = search.value.trim();
    filters.groups = groups.checked;
    filters.page = 1;
    load(true);
  }

  function suggest() {
    const parts = tagInput.value.split(",");
    const typed = parts.pop().trim();
    suggestions.replaceChildren();
    if (typed.length < 3) return;
    const before = parts.map((p) => p.trim()).filter(Boolean);
    const prefix = before.length ? `${before.join(", ")}, ` : "";
    for (const tag of [...knownTags].sort()) {
      if (tag.toLowerCase().includes(typed.toLowerCase()) && !before.includes(tag)) {
        suggestions.append(h("option", { value: prefix + tag }, tag));
      }
    }
  }

  function query() {
    const [from, to] = dateRange(filters.range);
    return {
      state: filters.state, tags: filters.tags, q: filters.q, page: filters.page, per_page: filters.per_page,
      streamgroups: filters.groups ? "true" : undefined,
      from: from?.toISOString(), to: to?.toISOString(),
    };
  }

  function remember() {
    const kept = new URLSearchParams();
    for (const [name, value] of Object.entries({ ...filters, groups: filters.groups ? "true" : "" })) {
      if (value && !(name === "page" && value === 1) && !(name === "state" && value === "all") && !(name === "per_page" && value === "25")) kept.set(name, value);
    }
    const text = kept.toString();
    history.replaceState(null, "", `#/streams${text ? `?${text}` : ""}`);
  }

  function row(stream, member = false) {
    const group = stream.playout?.rtmp?.length > 1 && !member;
    const groupCell = group
      ? h("button.badge.group", {
        type: "button",
        "aria-expanded": String(expanded.has(stream.id)),
        onclick: () => {
          if (expanded.has(stream.id)) expanded.delete(stream.id);
          else expanded.add(stream.id);
          render(JSON.parse(lastAnswer));
        },
      }, groupLabel(stream))
      : h("span.badge.single", {}, member ? `Profile ${stream.index}${stream.profile ? ` · ${stream.profile}` : ""}` : groupLabel(stream));
    return h(`tr${member ? ".member" : ""}`, { dataset: { id: stream.id } },
      h("td", {}, member ? "" : stateBadge(stream.state)),
      h("td.mono", {}, h("a", { href: `#/stream/${stream.id}` }, stream.id)),
      h("td.mono", {}, stream.streamname ?? stream.ingest?.rtmp?.streamname),
      h("td", {}, groupCell),
      h("td", {}, member ? "" : formatDate(stream.updated_at)),
      h("td", {}, (stream.tags || []).map((t) => h("span.tag", {}, t))));
  }

  function render(answer) {
    const rows = [];
    for (const stream of answer.items) {
      stream.tags.forEach((t) => knownTags.add(t));
      rows.push(row(stream));
      if (expanded.has(stream.id)) {
        for (const member of stream.playout.rtmp) {
          if (member.id !== stream.id) rows.push(row(member, true));
        }
      }
    }
    if (!rows.length) rows.push(h("tr", {}, h("td.empty", { colspan: "6" }, "No streams match.")));
    body.replaceChildren(...rows);
    const pages = Math.max(1, Math.ceil(answer.total / answer.per_page));
    summary.textContent = `Page ${answer.page} of ${pages} · ${answer.total} stream${answer.total === 1 ? "" : "s"}`;
    prev.disabled = answer.page <= 1;
    next.disabled = answer.page >= pages;
  }

  async function load(userAction = false) {
    if (userAction) remember();
    const answer = await guarded(() => api.listStreams(query()));
    if (!answer) return;
    const text = JSON.stringify(answer);
    if (text === lastAnswer) return;
    lastAnswer = text;
    render(answer);
  }

  function openCreate() {
    const fields = processingFields([], false);
    const tags = h("input", { id: "new-tags", type: "text", placeholder: "tag1, tag2" });
    const error = h("p.error", { role: "alert" });
    const profiles = PROFILES.map((p) => h("label.check", {}, h("input", { type: "checkbox", name: "profile", value: p }), p.replace("vtrans2-", "")));
    const dialog = h("dialog.wide", { "aria-labelledby": "new-title" });
    const form = h("form", {
      method: "dialog",
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        const body = {};
        const tagList = tags.value.split(",").map((t) => t.trim()).filter(Boolean);
        if (tagList.length) body.tags = tagList;
        try {
          body.processing = readProcessing(fields);
          const chosen = profiles.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => ({ profile: i.value }));
          if (chosen.length) body.transcodes = chosen;
          const created = await api.createStream(body);
          dialog.close();
          notify(`Created ${created.ingest.rtmp.streamname}`);
          location.hash = `#/stream/${created.id}`;
        } catch (e) {
          error.textContent = e.field ? `${e.message} (${e.field})` : e.message;
        }
      },
    },
    h("h2", { id: "new-title" }, "New stream"),
    h("label", { for: "new-tags" }, "Tags (comma-separated)"), tags,
    h("fieldset", {}, h("legend", {}, "Live processing"), fields.element),
    h("fieldset", {}, h("legend", {}, "Transcoded profiles (makes a stream group)"), profiles),
    error,
    h("div.actions", {},
      h("button.secondary", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button", { type: "submit", id: "create-submit" }, "Create stream")));
    dialog.append(form);
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    tags.focus();
  }

  // Tags for suggestions: those of the newest streams, besides every page shown.
  guarded(() => api.listStreams({ per_page: 150 })).then((answer) => answer?.items.forEach((s) => s.tags.forEach((t) => knownTags.add(t))));
  await load();
  const timer = setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
  main.querySelector("h1").focus?.();
  return () => clearInterval(timer);
}
