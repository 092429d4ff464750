// Overview: cluster counts, dispatch pause, per-minute charts of the last hour, workers and running jobs.

import { api } from "../api.js";
import { stackedBars, lineChart } from "../charts.js";
import { h, setText, setChildren, fmtSeconds, fmtNumber, progressBar, setProgress, badge, busy, throttle,
  shortId, showError, clearError } from "../dom.js";
import { t, onLanguage } from "../i18n.js";
import { state, on, runningJobOf } from "../live.js";
import { mountInstances } from "./instances.js";
import { mountQueuePanel } from "./queue_panel.js";

const ACTIVE = ["queued", "submitted", "running"];
const ACTIVE_SHOWN = 8;

export function mount(container, { navigate }) {
  const cards = {};
  const card = (key, extra) => {
    const value = h("div.card-value", {}, "—");
    const sub = h("div.card-sub", {}, "");
    const label = h("div.card-label", { "data-i18n": key });
    const el = h("section.card", { dataset: { card: key }, "aria-label": t(key) }, label, value, sub, extra);
    cards[key] = { el, value, sub, label };
    return el;
  };
  const pauseButton = h("button.btn", { type: "button", id: "dispatch-toggle" });
  const dispatchState = h("div.card-value", { id: "dispatch-state" }, "—");
  const dispatchCard = h("section.card.dispatch", { "aria-labelledby": "dispatch-label" },
    h("div.card-label#dispatch-label", { "data-i18n": "dispatching" }), dispatchState,
    h("div.card-sub", {}, pauseButton));
  const perMinute = h("div.chart-host#chart-per-minute");
  const runTime = h("div.chart-host#chart-run-time");
  const queueChart = h("div.chart-host#chart-queue");
  const waitChart = h("div.chart-host#chart-wait");
  const workersGrid = h("div.tiles", { role: "list" });
  const runningList = h("ul.running-list");
  const el = h("div.view-overview",
    h("div.cards", {},
      card("workers_online"), card("jobs_queued"), card("jobs_running"), card("jobs_done"), card("jobs_failed"),
      dispatchCard),
    h("div.grid-2", {},
      h("section.panel", { "aria-labelledby": "h-per-minute" },
        h("div.panel-head", {}, h("h2#h-per-minute", { "data-i18n": "chart_per_minute" }),
          h("div.legend", {}, h("span.key.done", { "data-i18n": "state.done" }),
            h("span.key.failed", { "data-i18n": "state.failed" }))),
        perMinute),
      h("section.panel", { "aria-labelledby": "h-run-time" },
        h("div.panel-head", {}, h("h2#h-run-time", { "data-i18n": "chart_run_time" })), runTime)),
    h("div.grid-2", {},
      h("section.panel", { "aria-labelledby": "h-queue-chart" },
        h("div.panel-head", {}, h("h2#h-queue-chart", { "data-i18n": "chart_queue" })), queueChart),
      h("section.panel", { "aria-labelledby": "h-wait-chart" },
        h("div.panel-head", {}, h("h2#h-wait-chart", { "data-i18n": "chart_wait" })), waitChart)),
    h("div.grid-2", {},
      h("section.panel", { "aria-labelledby": "h-tiles" },
        h("div.panel-head", {}, h("h2#h-tiles", { "data-i18n": "nav.workers" }),
          h("a.link", { href: "#/workers", "data-i18n": "manage_workers" })),
        workersGrid),
      h("section.panel", { "aria-labelledby": "h-running" },
        h("div.panel-head", {}, h("h2#h-running", { "data-i18n": "active_jobs" }),
          h("a.link", { href: "#/jobs", "data-i18n": "all_jobs" })),
        runningList)));
  container.append(el);
  const queuePanel = mountQueuePanel(el);
  const instances = mountInstances(el);

  let stats = null;
  let paused = null;
  let visible = false;
  let timer = null;

  function renderCounts() {
    const workers = [...state.workers.values()];
    const online = workers.filter((w) => w.state === "online" || w.state === "draining").length;
    setText(cards.workers_online.value, `${online} / ${workers.length}`);
    const offline = workers.filter((w) => w.state === "offline").length;
    const disabled = workers.filter((w) => w.state === "disabled").length;
    setText(cards.workers_online.sub, workers.length ? t("workers_sub", { offline, disabled }) : t("no_workers_yet"));
    cards.workers_online.el.dataset.alert = workers.length && online === 0 ? "true" : "false";
    if (!stats) return;
    const by = stats.jobs_by_state || {};
    setText(cards.jobs_queued.value, fmtNumber((by.queued || 0) + (by.submitted || 0)));
    setText(cards.jobs_queued.sub, t("queued_sub", { n: fmtNumber(by.submitted || 0) }));
    setText(cards.jobs_running.value, fmtNumber(by.running || 0));
    setText(cards.jobs_running.sub, t("cluster_queue", { n: fmtNumber(stats.cluster_queue_remaining || 0) }));
    const lastHour = (stats.per_minute || []).reduce((acc, b) => {
      acc.done += b.finished; acc.failed += b.failed; return acc;
    }, { done: 0, failed: 0 });
    setText(cards.jobs_done.value, fmtNumber(by.done || 0));
    setText(cards.jobs_done.sub, t("last_hour_n", { n: fmtNumber(lastHour.done) }));
    setText(cards.jobs_failed.value, fmtNumber(by.failed || 0));
    setText(cards.jobs_failed.sub, t("last_hour_n", { n: fmtNumber(lastHour.failed) }));
  }

  function renderDispatch() {
    if (paused === null) return;
    setText(dispatchState, paused ? t("paused") : t("dispatching_on"));
    dispatchState.dataset.state = paused ? "paused" : "on";
    setText(pauseButton, paused ? t("resume") : t("pause"));
    pauseButton.classList.toggle("primary", paused);
  }

  function minuteLabel(minute) {
    return new Date(minute * 1000).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", hour12: false });
  }

  function renderCharts() {
    if (!stats || !visible) return;
    const buckets = (stats.per_minute || []).slice(-60);
    const xLabels = [[0, t("minutes_ago", { n: 60 })], [0.5, t("minutes_ago", { n: 30 })], [1, t("now")]];
    stackedBars(perMinute, buckets.map((b) => ({ label: b.minute, values: [b.finished, b.failed] })), {
      classes: ["done", "failed"], label: t("chart_per_minute"), xLabels,
      describe: (p) => `${minuteLabel(p.label)}: ${t("state.done")} ${p.values[0]}, ${t("state.failed")} ${p.values[1]}`,
    });
    lineChart(runTime, buckets.map((b) => ({ label: b.minute, value: b.mean_run_seconds })), {
      label: t("chart_run_time"), xLabels, yFormat: (v) => (v === 0 ? "0" : v >= 10 ? `${Math.round(v)}s` : `${v.toFixed(1)}s`),
      describe: (p) => `${minuteLabel(p.label)}: ${p.value === null ? "—" : fmtSeconds(p.value)}`,
    });
    const seconds = (v) => (v === 0 ? "0" : v >= 10 ? `${Math.round(v)}s` : `${v.toFixed(1)}s`);
    lineChart(waitChart, buckets.map((b) => ({ label: b.minute, value: b.mean_wait_seconds ?? null })), {
      label: t("chart_wait"), xLabels, yFormat: seconds,
      describe: (p) => `${minuteLabel(p.label)}: ${p.value === null ? "—" : fmtSeconds(p.value)}`,
    });
    // Samples every 10 s since the gateway started (at most an hour): the axis says how far back they go.
    const samples = stats.queue_samples || [];
    const span = samples.length > 1 ? Math.max(1, Math.round((samples.at(-1).at - samples[0].at) / 60)) : 0;
    lineChart(queueChart, samples.map((q) => ({ label: q.at, value: q.queued })), {
      label: t("chart_queue"), xLabels: [[0, t("minutes_ago", { n: span })], [1, t("now")]],
      yFormat: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)),
      describe: (p) => `${minuteLabel(p.label)}: ${t("waiting_in_gateway", { n: p.value })}`,
    });
  }

  const tiles = new Map();
  function renderTiles() {
    const workers = [...state.workers.values()];
    if (!workers.length) {
      tiles.clear();
      setChildren(workersGrid, h("p.empty", {}, t("no_workers_yet"), " ",
        h("a.link", { href: "#/workers?add=1" }, t("add_worker"))));
      return;
    }
    if (workersGrid.querySelector(".empty")) workersGrid.replaceChildren();
    const seen = new Set();
    for (const worker of workers) {
      seen.add(worker.id);
      let tile = tiles.get(worker.id);
      if (!tile) {
        const dot = h("span.dot");
        const name = h("span.tile-name");
        const meta = h("span.tile-meta");
        const bar = progressBar(0);
        const el = h("a.tile", { role: "listitem", href: `#/workers`, title: "" }, h("div.tile-top", {}, dot, name),
          meta, bar);
        tile = { el, dot, name, meta, bar };
        tiles.set(worker.id, tile);
        workersGrid.append(el);
      }
      tile.el.dataset.state = worker.state;
      setText(tile.name, worker.name || worker.url);
      tile.el.title = `${worker.name} — ${t(`state.${worker.state}`)}${worker.last_error ? `\n${worker.last_error}` : ""}`;
      const job = runningJobOf(worker);
      setText(tile.meta, `${t(`state.${worker.state}`)} · ${t("queue_n", { n: worker.queue_remaining })}`);
      tile.bar.hidden = !job;
      if (job) setProgress(tile.bar, job.progress ? job.progress.percent : 0);
    }
    for (const [id, tile] of tiles) {
      if (!seen.has(id)) { tile.el.remove(); tiles.delete(id); }
    }
  }

  // The list comes from the API (all active jobs, counted by the store), live progress from the stream.
  let activePage = { items: [], total: 0 };
  function renderRunning() {
    const active = activePage.items.map((job) => {
      const live = state.jobs.get(job.prompt_id);
      return live && ACTIVE.includes(live.state) ? { ...job, ...live } : job;
    });
    active.sort((a, b) => (a.state === "running" ? -1 : 0) - (b.state === "running" ? -1 : 0) || a.created_at - b.created_at);
    if (!active.length) {
      setChildren(runningList, h("li.empty", {}, t("no_active_jobs")));
      return;
    }
    setChildren(runningList, active.map((job) => h("li", { dataset: { promptId: job.prompt_id } },
      h("a.mono", { href: `#/jobs?job=${job.prompt_id}` }, shortId(job.prompt_id)),
      badge(job.state), h("span.muted", {}, job.worker || "—"),
      progressBar(job.progress ? job.progress.percent : 0))),
    activePage.total > active.length ? h("li.muted", {}, t("and_more", { n: fmtNumber(activePage.total - active.length) })) : null);
  }

  async function loadActive() {
    try {
      // Running jobs first (they show progress), then the oldest waiting ones fill the list.
      const [running, waiting] = await Promise.all([api.tasks({ state: "running", limit: ACTIVE_SHOWN }),
        api.tasks({ state: "queued,submitted", limit: ACTIVE_SHOWN })]);
      const items = [...running.items, ...waiting.items].slice(0, ACTIVE_SHOWN);
      activePage = { items, total: running.total + waiting.total };
    } catch { return; /* the stats error says why */ }
    renderRunning();
  }

  async function loadStats() {
    try {
      stats = await api.stats();
      clearError(cards.jobs_queued.el.parentElement);
    } catch (error) {
      showError(el.firstChild, error);
      return;
    }
    renderCounts();
    renderCharts();
  }

  async function loadDispatch() {
    try {
      paused = (await api.dispatch()).paused;
    } catch { /* shown by the stats error */ }
    renderDispatch();
  }

  pauseButton.addEventListener("click", () => busy(pauseButton, async () => {
    paused = (await api.setPaused(!paused)).paused;
    renderDispatch();
  }));

  const statsSoon = throttle(() => { if (visible) loadStats(); }, 1500);
  const tilesSoon = throttle(() => { if (visible) { renderTiles(); renderCounts(); } }, 250);
  const runningSoon = throttle(() => { if (visible) { renderRunning(); renderTiles(); } }, 250);
  const activeSoon = throttle(() => { if (visible) loadActive(); }, 1000);
  on("worker", tilesSoon);
  on("workers", tilesSoon);
  on("jobs", runningSoon);
  on("job", (data) => {
    runningSoon();
    if (data.event !== "progress") { statsSoon(); activeSoon(); }
  });
  on("summary", (summary) => {
    if (summary && typeof summary.paused === "boolean") { paused = summary.paused; renderDispatch(); }
  });
  on("resync", () => { if (visible) { loadStats(); loadDispatch(); loadActive(); } });
  onLanguage(() => { renderCounts(); renderDispatch(); renderCharts(); renderTiles(); renderRunning(); });
  let resizeTimer = null;
  window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(renderCharts, 150); });

  return {
    el,
    show() {
      visible = true;
      renderTiles();
      renderRunning();
      renderCounts();
      loadStats();
      loadDispatch();
      loadActive();
      instances.show();
      queuePanel.show();
      timer = setInterval(() => { loadStats(); loadDispatch(); loadActive(); }, 10000);
    },
    hide() {
      visible = false;
      clearInterval(timer);
      instances.hide();
      queuePanel.hide();
    },
  };
}
