// Thin client for the gateway's HTTP API: JSON in and out, one error type. The token (API key or admin
// token) lives in an HttpOnly cookie the gateway sets from the admin link's ?token=: scripts never see it.

const OLD_TOKEN_KEY = "gateway.token"; // where earlier versions kept it (moved into the cookie once)

/** An API call that failed: status, error type, plain message, and the field that caused it (if any). */
export class ApiError extends Error {
  constructor(status, type, message, field = null, body = null) {
    super(message);
    this.status = status;
    this.type = type;
    this.field = field;
    this.body = body;
  }
}

/** Hand a token to the gateway, which keeps it in an HttpOnly cookie ("" removes it); the page reloads. */
export function setToken(token) {
  location.assign(`/?token=${encodeURIComponent(token || "")}${location.hash}`);
}

/** A token an earlier version kept in localStorage moves into the cookie (true: the page is reloading). */
export function migrateOldToken() {
  const old = localStorage.getItem(OLD_TOKEN_KEY);
  if (!old) return false;
  localStorage.removeItem(OLD_TOKEN_KEY);
  setToken(old);
  return true;
}

function errorFrom(status, body, text) {
  const err = body && typeof body === "object" ? body.error : null;
  if (err && typeof err === "object") {
    let message = err.message || err.type || `HTTP ${status}`;
    if (err.details) message += ` — ${err.details}`;
    return new ApiError(status, err.type || "error", message, err.field || null, body);
  }
  return new ApiError(status, "http_error", (text || "").trim().slice(0, 300) || `HTTP ${status}`, null, body);
}

/** Call the API; resolves to the parsed JSON (or null for an empty body), rejects with ApiError. */
export async function request(method, path, body, { signal } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, "network", "");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) throw errorFrom(response.status, data, text);
  return data;
}

export const api = {
  workers: () => request("GET", "/api/workers"),
  addWorker: (body) => request("POST", "/api/workers", body),
  updateWorker: (id, body) => request("PATCH", `/api/workers/${id}`, body),
  deleteWorker: (id) => request("DELETE", `/api/workers/${id}`),
  testWorker: (id) => request("POST", `/api/workers/${id}/test`),
  probeUrl: (body) => request("POST", "/api/workers/test", body),
  stats: () => request("GET", "/api/stats"),
  workerStats: () => request("GET", "/api/stats/workers"),
  tasks: (query, options) => request("GET", `/api/tasks?${new URLSearchParams(query)}`, undefined, options),
  task: (id) => request("GET", `/api/task/${encodeURIComponent(id)}/status`),
  timeline: (id) => request("GET", `/api/task/${encodeURIComponent(id)}/timeline`),
  setPriority: (id, priority) => request("PATCH", `/api/task/${encodeURIComponent(id)}`, { priority }),
  cancel: (ids) => request("POST", "/api/queue", { delete: ids }),
  queueOrder: (query) => request("GET", `/api/tasks/queue?${new URLSearchParams(query)}`),
  clearQueue: () => request("POST", "/api/queue", { clear: true }),
  resubmit: (ids) => request("POST", "/api/tasks/resubmit", { prompt_ids: ids }),
  interrupt: (id) => request("POST", "/api/interrupt", { prompt_id: id }),
  history: (id) => request("GET", `/api/history/${encodeURIComponent(id)}`),
  submit: (body) => request("POST", "/api/prompt", body),
  settings: () => request("GET", "/api/settings"),
  saveSettings: (changes) => request("PATCH", "/api/settings", changes),
  dispatch: () => request("GET", "/api/dispatch"),
  setPaused: (paused) => request("POST", "/api/dispatch", { paused }),
  speeds: () => request("GET", "/api/ui/speeds"),
  cluster: () => request("GET", "/api/cluster"),
};

/** A URL the browser loads by itself (img src, links): the cookie carries the token, so it stays as it is. */
export function withToken(url) {
  return url;
}

/** The WebSocket URL of the admin event stream (the cookie goes with the upgrade request). */
export function eventsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/events`;
}
