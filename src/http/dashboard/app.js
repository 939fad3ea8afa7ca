// The dashboard's entry: hash routes (#/streams, #/stream/<id>), the sign-in form and the
// account bar. Each view returns a cleanup function (stops its timers and players), called
// when the route changes.
import { session, signIn, signOut } from "./api.js";
import { h, notify } from "./ui.js";
import { renderList } from "./list.js";
import { renderStream } from "./stream.js";

let cleanup = null;

/** The current route: path and query of the hash. */
export function currentRoute() {
  const [path, search = ""] = location.hash.replace(/^#/, "").split("?");
  return { path: path || "/streams", params: new URLSearchParams(search) };
}

function renderAccount() {
  const nav = document.getElementById("account");
  const current = session();
  nav.replaceChildren();
  if (!current) return;
  nav.append(
    h("span.org", {}, current.organisation?.name || current.organisation?.hash || ""),
    h("span.badge.role", { title: "Your key's role" }, current.role.replace("nano", "")),
    h("button.secondary", {
      type: "button",
      onclick: () => {
        signOut();
        location.hash = "#/signin";
        route();
      },
    }, "Sign out"));
}

function renderSignIn(main) {
  const input = h("input", {
    id: "apikey", name: "apikey", type: "password", required: true, autocomplete: "off",
    spellcheck: "false", "aria-describedby": "apikey-help",
  });
  const error = h("p.error", { id: "signin-error", role: "alert" });
  const form = h("form.card.signin", {
    onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        await signIn(input.value.trim());
        if (currentRoute().path === "/signin") location.hash = "#/streams"; // hashchange routes
        else route();
      } catch (e) {
        error.textContent = e.status === 401 ? "This key is not valid." : e.message;
        input.focus();
      }
    },
  },
  h("h1", {}, "Sign in"),
  h("label", { for: "apikey" }, "API key"),
  input,
  h("p.muted", { id: "apikey-help" },
    "The key is kept in this browser tab only and forgotten when you close it. ",
    "A new server prints its first admin key at start and saves it to <data>/admin-api-key."),
  error,
  h("button", { type: "submit" }, "Sign in"));
  main.replaceChildren(form);
  input.focus();
}

let generation = 0;

async function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  // A newer navigation may start while this one awaits the API: only the newest keeps its view.
  const mine = ++generation;
  const main = document.getElementById("main");
  renderAccount();
  const { path, params } = currentRoute();
  if (!session() || path === "/signin") {
    if (session()) {
      location.hash = "#/streams";
      return;
    }
    renderSignIn(main);
    return;
  }
  try {
    const done = path.startsWith("/stream/")
      ? await renderStream(main, decodeURIComponent(path.slice("/stream/".length)), params)
      : await renderList(main, params);
    if (mine === generation) cleanup = done;
    else done();
  } catch (e) {
    if (mine !== generation) return;
    if (e.status === 401) {
      signOut();
      notify("The key is no longer valid: sign in again.", "error");
      renderAccount();
      renderSignIn(main);
      return;
    }
    main.replaceChildren(h("p.error", { role: "alert" }, e.message));
  }
}

window.addEventListener("hashchange", route);
route();
