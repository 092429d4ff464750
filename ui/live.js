// The admin event stream (/api/events) with reconnect, plus the page's shared live state.

import { api, eventsUrl } from "./api.js";
import { clock } from "./dom.js";

const listeners = new Map(); // kind -> Set(fn)

/** Subscribe to "worker", "job", "summary", "workers" (list reloaded), "connection", "resync" and "updated". */
export function on(kind, fn) {
  if (!listeners.has(kind)) listeners.set(kind, new Set());
  listeners.get(kind).add(fn);
  return () => listeners.get(kind).delete(fn);
}

function emit(kind, data) {
  for (const fn of listeners.get(kind) || []) {
    try { fn(data); } catch (error) { console.warn("listener failed", error); }
  }
}

/** What the page knows right now; views read it and subscribe to changes. */
export const state = {
  workers: new Map(), // id -> worker dict
  jobs: new Map(), // prompt_id -> latest status dict seen on the stream (active jobs, recent ones)
  summary: null,
  speeds: {}, // worker id -> {speed, observations}
  speedsSupported: true,
  connected: false,
  updatedAt: null, // when the page last heard from the gateway (page clock, ms)
};

const ACTIVE = ["queued", "submitted", "running"];

/** The job a worker is running, if the page still believes it is there: a worker's list of running jobs
 * is its last report (an offline worker keeps its old one), so a job already retried elsewhere or
 * finished is not shown on it. */
export function runningJobOf(worker) {
  for (const id of worker.running || []) {
    const job = state.jobs.get(id);
    if (!job) return worker.state === "offline" ? null : { prompt_id: id };
    if (ACTIVE.includes(job.state) && (job.worker_id === undefined || job.worker_id === null
      || job.worker_id === worker.id)) return job;
  }
  return null;
}

function touched() {
  state.updatedAt = Date.now();
  emit("updated", state.updatedAt);
}

const MAX_REMEMBERED_JOBS = 2000;

function rememberJob(job) {
  state.jobs.delete(job.prompt_id);
  state.jobs.set(job.prompt_id, job);
  if (state.jobs.size > MAX_REMEMBERED_JOBS) {
    for (const [id, old] of state.jobs) {
      if (state.jobs.size <= MAX_REMEMBERED_JOBS) break;
      if (!["queued", "submitted", "running"].includes(old.state)) state.jobs.delete(id);
    }
  }
}

/** Reload the worker list (and relative speeds, when the gateway offers them). */
export async function refreshWorkers() {
  const list = await api.workers();
  state.workers = new Map(list.map((w) => [w.id, w]));
  touched();
  if (state.speedsSupported) {
    try {
      const answer = await api.speeds();
      state.speeds = (answer && answer.speeds) || {};
    } catch (error) {
      if (error.status === 404) state.speedsSupported = false;
    }
  }
  emit("workers", state.workers);
  return state.workers;
}

/** Learn the running jobs so the workers table can show their progress at once. */
export async function refreshRunningJobs() {
  const page = await api.tasks({ state: "submitted,running", limit: 500 });
  if (page.generated_at) clock.skew = page.generated_at - Date.now() / 1000;
  for (const job of page.items) rememberJob(job);
  touched();
  emit("jobs", state.jobs);
}

export function upsertWorker(worker) {
  state.workers.set(worker.id, worker);
  emit("worker", worker);
}

export function removeWorker(id) {
  state.workers.delete(id);
  emit("workers", state.workers);
}

export function upsertJob(job) {
  rememberJob(job);
  emit("job", { event: "local", job });
}

// ----- the socket -----------------------------------------------------------------------------------
let socket = null;
let retryDelay = 500;
let retryTimer = null;
let everConnected = false;

function handleMessage(message) {
  let frame;
  try { frame = JSON.parse(message.data); } catch { return; }
  const { kind, data } = frame || {};
  touched();
  if (kind === "worker" && data) {
    if (data.event === "deleted") {
      state.workers.delete(data.id);
      emit("workers", state.workers);
    } else {
      state.workers.set(data.id, data);
      emit("worker", data);
    }
  } else if (kind === "job" && data && data.job) {
    rememberJob(data.job);
    emit("job", data);
  } else if (kind === "summary") {
    state.summary = data;
    emit("summary", data);
  } else if (kind === "cluster") {
    emit("cluster", data);
  }
}

function setConnected(value) {
  if (state.connected === value) return;
  state.connected = value;
  emit("connection", value);
}

/** Open the stream; on loss, retry with backoff and resync the page once it is back. */
export function connect() {
  clearTimeout(retryTimer);
  let ws;
  try {
    ws = new WebSocket(eventsUrl());
  } catch {
    scheduleRetry();
    return;
  }
  socket = ws;
  ws.addEventListener("open", () => {
    if (ws !== socket) return;
    retryDelay = 500;
    setConnected(true);
    if (everConnected) emit("resync", null);
    everConnected = true;
  });
  ws.addEventListener("message", (message) => { if (ws === socket) handleMessage(message); });
  ws.addEventListener("close", () => {
    if (ws !== socket) return;
    setConnected(false);
    scheduleRetry();
  });
}

function scheduleRetry() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 10000);
}

/** Close and reopen now (e.g. after the token changed). */
export function reconnect() {
  const old = socket;
  socket = null;
  if (old) {
    try { old.close(); } catch { /* already closed */ }
  }
  retryDelay = 500;
  connect();
}
