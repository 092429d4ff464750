// Jobs: a filterable list paged by the API (/api/tasks), live progress from the event stream, detail dialog.

import { api } from "../api.js";
import { h, setText, setChildren, fmtTime, fmtSeconds, fmtNumber, progressBar, setProgress, badge, throttle,
  debounce, shortId, showError, waitSeconds, clock } from "../dom.js";
import { mountBulk } from "./jobs_bulk.js";
import { t, onLanguage } from "../i18n.js";
import { state, on } from "../live.js";
import { jobActions, openJobDetail } from "./job_detail.js";

const STATES = ["queued", "submitted", "running", "done", "failed"];
const RANGES = { any: null, "1h": 3600, "24h": 86400, "7d": 7 * 86400, custom: null };
const PAGE_SIZES = [25, 50, 100, 200];
const COLUMNS = ["col.select", "col.job", "col.state", "col.progress", "col.priority", "col.worker", "col.client", "col.created",
  "col.wait", "col.run", "col.workflow", "col.actions"];

export function mount(container, { navigate }) {
  const filters = { states: new Set(), worker: "", client: "", q: "", range: "any", from: "", to: "", limit: 50,
    offset: 0 };

  // ----- filter bar -----
  const stateChips = STATES.map((s) => {
    const input = h("input", { type: "checkbox", value: s });
    input.addEventListener("change", () => {
      if (input.checked) filters.states.add(s); else filters.states.delete(s);
      filters.offset = 0;
      load();
    });
    return h("label.chip-toggle", { dataset: { state: s } }, input, h("span", { "data-i18n": `state.${s}` }));
  });
  const workerSelect = h("select#filter-worker", {});
  workerSelect.addEventListener("change", () => { filters.worker = workerSelect.value; filters.offset = 0; load(); });
  const clientInput = h("input#filter-client", { type: "search", spellcheck: "false", autocomplete: "off" });
  clientInput.addEventListener("input", debounce(() => { filters.client = clientInput.value.trim(); filters.offset = 0; load(); }, 350));
  const searchInput = h("input#filter-q", { type: "search", spellcheck: "false", autocomplete: "off",
    "data-i18n-placeholder": "search_placeholder", placeholder: t("search_placeholder") });
  searchInput.addEventListener("input", debounce(() => { filters.q = searchInput.value.trim(); filters.offset = 0; load(); }, 350));
  const rangeSelect = h("select#filter-range", {});
  const fromInput = h("input#filter-from", { type: "datetime-local", step: "1" });
  const toInput = h("input#filter-to", { type: "datetime-local", step: "1" });
  const customRange = h("div.custom-range", { hidden: true },
    h("label", { for: "filter-from", "data-i18n": "from" }), fromInput,
    h("label", { for: "filter-to", "data-i18n": "to" }), toInput);
  rangeSelect.addEventListener("change", () => {
    filters.range = rangeSelect.value;
    customRange.hidden = filters.range !== "custom";
    filters.offset = 0;
    load();
  });
  for (const input of [fromInput, toInput]) {
    input.addEventListener("change", () => { filters.from = fromInput.value; filters.to = toInput.value; filters.offset = 0; load(); });
  }
  const resetButton = h("button.btn.small", { type: "button", "data-i18n": "reset_filters" });
  resetButton.addEventListener("click", () => {
    filters.states.clear();
    for (const chip of stateChips) chip.firstChild.checked = false;
    Object.assign(filters, { worker: "", client: "", q: "", range: "any", from: "", to: "", offset: 0 });
    workerSelect.value = ""; clientInput.value = ""; searchInput.value = ""; rangeSelect.value = "any"; fromInput.value = ""; toInput.value = "";
    customRange.hidden = true;
    load();
  });
  const filterBar = h("form.filters", { role: "search", "aria-label": t("filters"), on: { submit: (e) => e.preventDefault() } },
    h("div.filter", {}, h("label", { for: "filter-q", "data-i18n": "search" }), searchInput),
    h("fieldset.chips", {}, h("legend", { "data-i18n": "col.state" }), stateChips),
    h("div.filter", {}, h("label", { for: "filter-worker", "data-i18n": "col.worker" }), workerSelect),
    h("div.filter", {}, h("label", { for: "filter-client", "data-i18n": "col.client" }), clientInput),
    h("div.filter", {}, h("label", { for: "filter-range", "data-i18n": "time" }), rangeSelect),
    customRange, resetButton);

  // ----- table and pager -----
  const tbody = h("tbody");
  const bulk = mountBulk({ rows: () => rows, reload: () => load() });
  const table = h("table.table.jobs-table", { "aria-labelledby": "h-jobs" },
    h("thead", {}, h("tr", {}, COLUMNS.map((key, i) => (i === 0 ? h("th.cell-select", { scope: "col" }, bulk.selectAll)
      : h("th", { scope: "col", "data-i18n": key }))))), tbody);
  const total = h("span.muted.count", { "aria-live": "polite" });
  const range = h("span.range");
  const pageInput = h("input#page-input", { type: "number", min: "1", value: "1" });
  const pageCount = h("span");
  const first = h("button.btn.small", { type: "button", "aria-label": "first" }, "«");
  const prev = h("button.btn.small#page-prev", { type: "button" }, "‹");
  const next = h("button.btn.small#page-next", { type: "button" }, "›");
  const last = h("button.btn.small", { type: "button" }, "»");
  const sizeSelect = h("select#page-size", {}, PAGE_SIZES.map((n) => h("option", { value: n, selected: n === filters.limit }, n)));
  const pager = h("nav.pager", { "aria-label": t("pages") }, range, h("span.spacer"), first, prev,
    h("label.inline", { for: "page-input" }, h("span", { "data-i18n": "page" })), pageInput, pageCount, next, last,
    h("label.inline", { for: "page-size" }, h("span", { "data-i18n": "per_page" })), sizeSelect);
  const emptyNote = h("div.empty-state", { hidden: true }, h("p", { "data-i18n": "no_jobs_match" }));
  const listError = h("div.top-error-anchor");
  const el = h("div.view-jobs",
    h("div.toolbar", {}, h("h2#h-jobs", { "data-i18n": "nav.jobs" }), total, h("span.spacer"), bulk.clearButton,
      h("a.btn.small", { href: "#/submit", "data-i18n": "submit_new" })),
    filterBar, bulk.bar, listError, h("div.table-wrap", {}, table), emptyNote, pager);
  container.append(el);

  let page = { items: [], total: 0, limit: filters.limit, offset: 0 };
  let visible = false;
  let loading = null;
  const rows = new Map(); // prompt_id -> {tr, cells, state}

  const pages = () => Math.max(1, Math.ceil(page.total / filters.limit));
  const goTo = (offset) => {
    filters.offset = Math.max(0, Math.min(offset, (pages() - 1) * filters.limit));
    load();
  };
  first.addEventListener("click", () => goTo(0));
  prev.addEventListener("click", () => goTo(filters.offset - filters.limit));
  next.addEventListener("click", () => goTo(filters.offset + filters.limit));
  last.addEventListener("click", () => goTo((pages() - 1) * filters.limit));
  pageInput.addEventListener("change", () => goTo((Math.max(1, Number(pageInput.value) || 1) - 1) * filters.limit));
  sizeSelect.addEventListener("change", () => { filters.limit = Number(sizeSelect.value); filters.offset = 0; load(); });

  function query() {
    const q = { limit: filters.limit, offset: filters.offset };
    if (filters.states.size) q.state = [...filters.states].join(",");
    if (filters.worker) q.worker = filters.worker;
    if (filters.client) q.client_id = filters.client;
    if (filters.q) q.q = filters.q;
    const now = Date.now() / 1000;
    if (RANGES[filters.range]) q.since = (now - RANGES[filters.range]).toFixed(0);
    if (filters.range === "custom") {
      if (filters.from) q.since = String(new Date(filters.from).getTime() / 1000);
      if (filters.to) q.until = String(new Date(filters.to).getTime() / 1000);
    }
    return q;
  }

  function renderOptions() {
    const current = workerSelect.value;
    const workers = [...state.workers.values()].sort((a, b) => a.id - b.id);
    setChildren(workerSelect, h("option", { value: "" }, t("all_workers")),
      workers.map((w) => h("option", { value: String(w.id) }, w.name || w.url)));
    workerSelect.value = current;
    setChildren(rangeSelect, Object.keys(RANGES).map((key) => h("option", { value: key }, t(`range.${key}`))));
    rangeSelect.value = filters.range;
  }

  function makeRow(job) {
    const cells = {
      select: h("td.cell-select", {}, bulk.checkbox(job)),
      id: h("td.mono"), state: h("td"), progress: h("td.cell-progress"), priority: h("td.num"), worker: h("td"),
      client: h("td.mono.cell-client"), created: h("td.nowrap"), wait: h("td.num"), run: h("td.num"), workflow: h("td.cell-workflow"),
      actions: h("td"),
    };
    const link = h("a", { href: `#/jobs?job=${job.prompt_id}`, title: job.prompt_id }, shortId(job.prompt_id));
    cells.id.append(link);
    const bar = progressBar(0, t("progress_of", { id: shortId(job.prompt_id) }));
    cells.progress.append(bar);
    Object.values(cells).forEach((cell, i) => { cell.dataset.label = t(COLUMNS[i]); });
    const tr = h("tr", { dataset: { promptId: job.prompt_id } }, Object.values(cells));
    return { tr, cells, bar, shownState: null, job };
  }

  function renderRow(row, job) {
    const { cells } = row;
    row.job = job;
    row.tr.dataset.state = job.state;
    if (row.shownState !== job.state) {
      row.shownState = job.state;
      setChildren(cells.state, badge(job.state), job.error ? h("span.error-text.small", { title: job.error.message || "" },
        ` ${t(`errtype.${job.error.type}`, {}, job.error.type)}`) : null);
      setChildren(cells.actions, jobActions(job, { compact: true, onChange: (j) => renderRow(row, j) }));
    }
    setProgress(row.bar, job.progress ? job.progress.percent : 0, job.state);
    setText(cells.priority, job.priority);
    setText(cells.worker, job.worker || "—");
    setText(cells.client, job.client_id || "—");
    cells.client.title = job.client_id || "";
    setText(cells.created, fmtTime(job.created_at));
    setText(cells.wait, fmtSeconds(waitSeconds(job)));
    setText(cells.run, fmtSeconds(job.run_seconds));
    if (job.class_types && !job.class_types.length) {
      setText(cells.workflow, "—");
    } else if (job.class_types) {
      const types = job.class_types.join(", ");
      setText(cells.workflow, `${types}${job.outputs !== undefined ? ` · ${t("outputs_n", { n: job.outputs })}` : ""}`);
      cells.workflow.title = t("workflow_summary", { n: job.nodes ?? job.class_types.length, types });
    }
  }

  function render() {
    rows.clear();
    const built = page.items.map((job) => {
      const row = makeRow(job);
      renderRow(row, state.jobs.get(job.prompt_id) && isNewer(state.jobs.get(job.prompt_id), job)
        ? { ...job, ...state.jobs.get(job.prompt_id) } : job);
      rows.set(job.prompt_id, row);
      return row.tr;
    });
    tbody.replaceChildren(...built);
    bulk.sync();
    emptyNote.hidden = page.items.length > 0;
    table.hidden = page.items.length === 0;
    setText(total, t("jobs_total", { n: fmtNumber(page.total) }));
    const from = page.total ? page.offset + 1 : 0;
    setText(range, t("showing", { from: fmtNumber(from), to: fmtNumber(page.offset + page.items.length),
      total: fmtNumber(page.total) }));
    pageInput.value = String(Math.floor(page.offset / filters.limit) + 1);
    pageInput.max = String(pages());
    setText(pageCount, t("of_pages", { n: fmtNumber(pages()) }));
    first.disabled = prev.disabled = page.offset <= 0;
    next.disabled = last.disabled = page.offset + filters.limit >= page.total;
  }

  function isNewer(live, listed) {
    const rank = (s) => STATES.indexOf(s);
    return rank(live.state) >= rank(listed.state);
  }

  async function load() {
    const controller = new AbortController();
    if (loading) loading.abort();
    loading = controller;
    el.setAttribute("aria-busy", "true");
    try {
      page = await api.tasks(query(), { signal: controller.signal });
      if (page.generated_at) clock.skew = page.generated_at - Date.now() / 1000;
      showError(listError, null);
      render();
    } catch (error) {
      if (error.name === "AbortError") return;
      const anchor = error.field === "worker" ? workerSelect : error.field === "state" ? filterBar
        : error.field === "since" || error.field === "until" ? rangeSelect : error.field === "q" ? searchInput
          : listError;
      showError(anchor, error);
    } finally {
      if (loading === controller) { loading = null; el.removeAttribute("aria-busy"); }
    }
  }

  // The first page follows the gateway by itself (new jobs appear, jobs that left the filter go); other
  // pages keep still so they can be read.
  const reloadSoon = throttle(() => { if (visible && filters.offset === 0) load(); }, 1000);
  on("job", (data) => {
    if (!visible) return;
    const row = rows.get(data.job.prompt_id);
    if (row) {
      const listed = page.items.find((j) => j.prompt_id === data.job.prompt_id);
      renderRow(row, { ...listed, ...data.job });
      if (filters.states.size && !filters.states.has(data.job.state)) reloadSoon();
    } else if (data.event !== "progress") {
      reloadSoon();
    }
  });
  // Waiting jobs' "Waited" keeps counting (an event's wait_seconds is frozen at the time it was sent).
  setInterval(() => {
    if (!visible || document.hidden) return;
    for (const row of rows.values()) {
      if (row.job && !row.job.started_at && ["queued", "submitted"].includes(row.job.state)) {
        setText(row.cells.wait, fmtSeconds(waitSeconds(row.job)));
      }
    }
  }, 1000);
  on("workers", () => { if (visible) renderOptions(); });
  on("resync", () => { if (visible) load(); });
  onLanguage(() => { renderOptions(); if (visible) render(); });

  let detail = null;
  return {
    el,
    show(params) {
      visible = true;
      renderOptions();
      if (params.has("q")) {
        filters.q = params.get("q").trim();
        searchInput.value = filters.q;
        filters.offset = 0;
      }
      load();
      const id = params.get("job");
      if (id && !detail) {
        detail = openJobDetail(id, { onClose: () => { if (detail) { detail = null; navigate("#/jobs"); } } });
      }
    },
    hide() {
      visible = false;
      const open = detail;
      detail = null; // closing because the view changed: stay on the new view
      if (open) open.close();
    },
  };
}
