// The REST API as the dashboard uses it: the signed-in key (kept in this tab's
// sessionStorage only, gone when the tab closes), JSON in and out, errors as exceptions that
// carry the API's message and field.

const STORE = "reelay.session";

/** The signed-in key with its role and organisation, or null. */
export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE));
  } catch {
    return null;
  }
}

export function signOut() {
  sessionStorage.removeItem(STORE);
}

/** An API error: HTTP status, the API's code, message and (for 400s) the offending field. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
    this.field = body?.error?.field;
  }
}

async function request(method, path, body, key = session()?.key) {
  const headers = { "X-BINTU-APIKEY": key };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

/** Checks a key and keeps it for this tab; returns the session. */
export async function signIn(key) {
  const me = await request("GET", "/apikey/self", undefined, key);
  const organisation = await request("GET", "/organisation", undefined, key);
  const value = { key, role: me.role, keyName: me.name, organisation };
  sessionStorage.setItem(STORE, JSON.stringify(value));
  return value;
}

/** Whether the signed-in key may change things (nanoUser or nanoAdmin). */
export function canEdit() {
  const role = session()?.role;
  return role === "nanoUser" || role === "nanoAdmin";
}

const query = (params) => {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
};

const id = (value) => encodeURIComponent(value);

export const api = {
  listStreams: (params) => request("GET", `/stream${query(params)}`),
  getStream: (streamId, assetLimit = 50) => request("GET", `/stream/${id(streamId)}?asset_limit=${assetLimit}`),
  group: (streamId) => request("GET", `/stream/${id(streamId)}/group`),
  sessions: (streamId) => request("GET", `/stream/${id(streamId)}/sessions`),
  createStream: (body) => request("POST", "/stream", body),
  setTags: (streamId, tags) => request("PUT", `/stream/${id(streamId)}/tag`, { tags }),
  setProcessing: (streamId, processing, sync) =>
    request("PUT", `/stream/${id(streamId)}/processing`, { processing, sync }),
  stop: (streamId) => request("POST", `/stream/${id(streamId)}/stop`),
  unlock: (streamId) => request("POST", `/stream/${id(streamId)}/unlock`),
  remove: (streamId) => request("DELETE", `/stream/${id(streamId)}`),
  clip: (streamId, sessionId, start, end) =>
    request("POST", `/stream/${id(streamId)}/clips`, { session: sessionId, start, end }),
};

/** A URL the API handed out (absolute, from the server's public base URL) as a path on this
 * page's own origin, so the page fetches media only from where it was loaded. */
export function local(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.pathname + parsed.search;
  } catch {
    return url;
  }
}
