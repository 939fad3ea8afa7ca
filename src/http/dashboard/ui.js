// Small DOM helpers shared by the views: an element builder (text only through textContent,
// so nothing from the API is ever parsed as HTML), badges, dates, sizes, copy buttons, a
// confirmation dialog and a status line.

/** `h("a.link", { href }, "text", child)`: an element with classes, attributes, children. */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const STATE_LABELS = { live: "Live", created: "Created", ended: "Ended", locked: "Locked", deleted: "Deleted" };

export function stateBadge(state) {
  return h(`span.badge.state-${state}`, { "data-state": state }, STATE_LABELS[state] || state);
}

/** "Single Stream" or "Streamgroup (n Playouts)" from a stream's `playout.rtmp`. */
export function groupLabel(stream) {
  const n = stream.playout?.rtmp?.length || 1;
  return n > 1 ? `Streamgroup (${n} Playouts)` : "Single Stream";
}

export function formatDate(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

export function formatSize(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

/** A read-only text field with a Copy button (labelled for screen readers). */
export function copyField(label, value) {
  const input = h("input.copy-value", { type: "text", readonly: true, value, "aria-label": label });
  const button = h("button.secondary", {
    type: "button",
    "aria-label": `Copy ${label}`,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(value);
      } catch {
        input.select();
        document.execCommand?.("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => (button.textContent = "Copy"), 1500);
    },
  }, "Copy");
  return h("div.copy-field", {}, h("span.copy-label", {}, label), input, button);
}

/** Asks before a destructive action; resolves true when confirmed. */
export function confirmAction(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h("dialog.confirm", { "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, text),
      h("div.actions", {},
        h("button.secondary", { type: "button", value: "cancel", onclick: () => dialog.close("cancel") }, "Cancel"),
        h("button.danger", { type: "button", "data-confirm": "", onclick: () => dialog.close("ok") }, confirmLabel)));
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "ok");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** The status line at the top of the page (polite live region). */
export function notify(message, kind = "info") {
  const bar = document.getElementById("status");
  bar.textContent = message;
  bar.className = `status ${kind}`;
  clearTimeout(notify.timer);
  if (kind !== "error") notify.timer = setTimeout(() => (bar.textContent = ""), 5000);
}

/** Runs `action`; shows its error in the status line instead of throwing. */
export async function guarded(action) {
  try {
    return await action();
  } catch (e) {
    notify(e.field ? `${e.message} (${e.field})` : e.message, "error");
    return undefined;
  }
}

/** A tab strip with keyboard support (arrow keys, Home, End) per the WAI-ARIA tabs pattern. */
export function tabs(entries, selected, onSelect) {
  const list = h("div.tabs", { role: "tablist" });
  const buttons = entries.map(([key, label]) =>
    h("button.tab", {
      type: "button",
      role: "tab",
      id: `tab-${key}`,
      "aria-selected": String(key === selected),
      "aria-controls": "tabpanel",
      tabindex: key === selected ? "0" : "-1",
      onclick: () => onSelect(key),
    }, label));
  list.addEventListener("keydown", (event) => {
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: buttons.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const button = buttons[(next + buttons.length) % buttons.length];
    button.focus();
    button.click();
  });
  list.append(...buttons);
  return list;
}
