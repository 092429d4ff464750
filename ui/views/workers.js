// Workers: live table (state, queue, running job, VRAM, speed, last error) with add/edit/test/enable/drain/delete.

import { api } from "../api.js";
import { h, setText, setChildren, fmtBytes, fmtNumber, progressBar, setProgress, badge, busy, throttle,
  shortId, confirmDialog, showError } from "../dom.js";
import { t, onLanguage } from "../i18n.js";
import { state, on, refreshWorkers, refreshRunningJobs, upsertWorker, removeWorker, runningJobOf } from "../live.js";
import { openWorkerDialog, reportBody } from "./worker_form.js";
import { mountWorkerStats } from "./worker_stats.js";

const WORKER_COLUMNS = ["col.state", "col.name", "col.url", "col.queue", "col.running", "col.vram", "col.speed",
  "col.last_error", "col.actions"];

export function mount(container) {
  const addButton = h("button.btn.primary#add-worker", { type: "button", "data-i18n": "add_worker" });
  const count = h("span.muted.count");
  const tbody = h("tbody");
  const table = h("table.table.workers-table", { "aria-labelledby": "h-workers" },
    h("thead", {}, h("tr", {}, WORKER_COLUMNS.map((key) => h("th", { scope: "col", "data-i18n": key })))),
    tbody);
  const empty = h("div.empty-state", { hidden: true },
    h("p", { "data-i18n": "no_workers_long" }));
  const topError = h("div.top-error-anchor");
  const el = h("div.view-workers",
    h("div.toolbar", {}, h("h2#h-workers", { "data-i18n": "nav.workers" }), count, h("span.spacer"), addButton),
    topError,
    h("div.table-wrap", {}, table), empty);
  container.append(el);
  const stats = mountWorkerStats(el);

  const rows = new Map(); // id -> {tr, cells..., key}
  let visible = false;

  function actionButton(key, handler, cls = "", dynamic = false) {
    const button = h(`button.btn.small${cls}`, { type: "button", "data-i18n": dynamic ? null : key }, t(key));
    button.addEventListener("click", () => handler(button));
    return button;
  }

  function makeRow(worker) {
    const cells = {
      state: h("td.cell-state"), name: h("td.cell-name"), url: h("td.cell-url.mono"), queue: h("td.cell-queue.num"),
      running: h("td.cell-running"), vram: h("td.cell-vram"), speed: h("td.cell-speed.num"),
      error: h("td.cell-error"), actions: h("td.cell-actions"),
    };
    const id = worker.id;
    const current = () => state.workers.get(id);
    const buttons = {
      test: actionButton("test", (b) => testWorker(id, b)),
      edit: actionButton("edit", () => openWorkerDialog(current(), afterSave)),
      enable: actionButton("disable", (b) => toggle(id, b, "enabled"), "", true),
      drain: actionButton("drain", (b) => toggle(id, b, "draining"), "", true),
      remove: actionButton("delete", (b) => removeOne(id, b), ".danger-text"),
    };
    cells.actions.append(h("div.actions", {}, Object.values(buttons)));
    WORKER_COLUMNS.forEach((key, i) => { Object.values(cells)[i].dataset.label = t(key); }); // phone cards
    const tr = h("tr", { dataset: { workerId: id } }, Object.values(cells));
    const report = h("tr.report-row", { hidden: true }, h("td", { colspan: "9" }));
    return { tr, report, cells, buttons, key: "" };
  }

  function renderRow(row, worker) {
    const job = runningJobOf(worker);
    const speed = state.speeds[worker.id] || state.speeds[String(worker.id)];
    const key = JSON.stringify([worker, job && [job.prompt_id, job.progress && job.progress.percent], speed]);
    if (key === row.key) return;
    row.key = key;
    const { cells, buttons } = row;
    row.tr.dataset.state = worker.state;
    setChildren(cells.state, badge(worker.state));
    setChildren(cells.name, h("span.name", {}, worker.name || "—"),
      worker.auth_username ? h("span.chip", { title: t("auth_user_is", { user: worker.auth_username }) }, t("auth_chip")) : null,
      worker.weight !== 1 ? h("span.chip", { title: t("field.weight") }, `×${worker.weight}`) : null);
    setText(cells.url, worker.url);
    cells.url.title = worker.url;
    setText(cells.queue, `${worker.queue_remaining ?? 0} / ${worker.max_queue}`);
    if (job) {
      const id = job.prompt_id;
      setChildren(cells.running, h("a.mono", { href: `#/jobs?job=${id}` }, shortId(id)),
        progressBar(job.progress ? job.progress.percent : 0, t("progress_of", { id: shortId(id) })));
    } else {
      setChildren(cells.running, h("span.muted", {}, t("idle")));
    }
    if (worker.vram_total) {
      const used = worker.vram_used ?? 0;
      const fill = h("div");
      fill.style.width = `${Math.round((100 * used) / worker.vram_total)}%`; // CSSOM: allowed by the page's CSP
      const bar = h("div.mini-bar", { title: `${fmtBytes(used)} / ${fmtBytes(worker.vram_total)}` }, fill);
      setChildren(cells.vram, h("span", {}, `${fmtBytes(used)} / ${fmtBytes(worker.vram_total)}`), bar);
    } else {
      setChildren(cells.vram, h("span.muted", {}, "—"));
    }
    const latency = worker.latency_ms !== null && worker.latency_ms !== undefined ? `${fmtNumber(worker.latency_ms)} ms` : "";
    setChildren(cells.speed, h("span", { title: t("speed_hint") }, speed ? `×${Number(speed.speed).toFixed(2)}` : "—"),
      latency ? h("span.muted.sub", { title: t("latency") }, latency) : null);
    setChildren(cells.error, worker.last_error ? h("span.error-text", { title: worker.last_error }, worker.last_error) : h("span.muted", {}, "—"));
    setText(buttons.enable, worker.enabled ? t("disable") : t("enable"));
    setText(buttons.drain, worker.draining ? t("undrain") : t("drain"));
    buttons.drain.disabled = !worker.enabled;
    buttons.test.setAttribute("aria-label", `${t("test")} ${worker.name}`);
    buttons.edit.setAttribute("aria-label", `${t("edit")} ${worker.name}`);
    buttons.remove.setAttribute("aria-label", `${t("delete")} ${worker.name}`);
  }

  function render() {
    if (!visible) return;
    const workers = [...state.workers.values()].sort((a, b) => a.id - b.id);
    setText(count, t("workers_count", { n: workers.length,
      online: workers.filter((w) => w.state === "online" || w.state === "draining").length }));
    empty.hidden = workers.length > 0;
    table.hidden = workers.length === 0;
    const seen = new Set();
    let previous = null;
    for (const worker of workers) {
      seen.add(worker.id);
      let row = rows.get(worker.id);
      if (!row) {
        row = makeRow(worker);
        rows.set(worker.id, row);
      }
      renderRow(row, worker);
      // keep order: row, its report row
      const anchor = previous ? previous.report.nextSibling : tbody.firstChild;
      if (row.tr !== anchor) tbody.insertBefore(row.tr, anchor);
      if (row.tr.nextSibling !== row.report) tbody.insertBefore(row.report, row.tr.nextSibling);
      previous = row;
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) { row.tr.remove(); row.report.remove(); rows.delete(id); }
    }
  }

  async function testWorker(id, button) {
    const row = rows.get(id);
    await busy(button, async () => {
      const answer = await api.testWorker(id);
      if (answer.worker) upsertWorker(answer.worker);
      showReport(row, answer);
    }, row.cells.actions.firstChild);
  }

  function showReport(row, answer) {
    const cell = row.report.firstChild;
    const close = h("button.btn.small", { type: "button", "data-i18n": "close" }, t("close"));
    close.addEventListener("click", () => { row.report.hidden = true; });
    setChildren(cell, h("div.test-report", { role: "status", dataset: { ok: String(answer.ok) } },
      reportBody(answer), close));
    row.report.hidden = false;
  }

  async function toggle(id, button, field) {
    const worker = state.workers.get(id);
    await busy(button, async () => {
      const updated = await api.updateWorker(id, { [field]: !worker[field] });
      upsertWorker(updated);
    }, rows.get(id).cells.actions.firstChild);
  }

  async function removeOne(id, button) {
    const worker = state.workers.get(id);
    const ok = await confirmDialog(t("confirm_delete_worker", { name: worker.name || worker.url }), t("delete"));
    if (!ok) return;
    await busy(button, async () => {
      await api.deleteWorker(id);
      removeWorker(id);
    }, rows.get(id).cells.actions.firstChild);
  }

  function afterSave(worker) {
    upsertWorker(worker);
  }

  addButton.addEventListener("click", () => openWorkerDialog(null, afterSave));

  const renderSoon = throttle(render, 200);
  on("worker", renderSoon);
  on("workers", renderSoon);
  on("jobs", renderSoon);
  on("job", (data) => { if (data.job && (data.job.state === "running" || data.event === "finished")) renderSoon(); });
  onLanguage(() => { for (const row of rows.values()) row.key = ""; render(); });

  let poll = null;
  async function reload() {
    try {
      await Promise.all([refreshWorkers(), refreshRunningJobs()]);
      showError(topError, null);
    } catch (error) {
      showError(topError, error);
    }
  }

  return {
    el,
    show(params) {
      visible = true;
      render();
      reload();
      poll = setInterval(reload, 15000);
      stats.show();
      if (params.get("add")) openWorkerDialog(null, afterSave);
    },
    hide() {
      visible = false;
      clearInterval(poll);
      stats.hide();
    },
  };
}
