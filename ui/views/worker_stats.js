// The workers page's statistics panel: per worker over the last hour done/failed, jobs per hour, busy %,
// mean run time, how long it has been online, when it last answered, and its done jobs per 5 minutes.

import { api } from "../api.js";
import { sparkBars } from "../charts.js";
import { h, setChildren, fmtSeconds, fmtTime, fmtNumber, badge } from "../dom.js";
import { t, onLanguage } from "../i18n.js";

const COLUMNS = ["col.name", "col.done", "col.failed", "col.per_hour", "col.busy", "col.mean_run", "col.uptime",
  "col.last_seen", "col.chart"];
const REFRESH_MS = 15000;

/** Mount the panel into `host`; returns {show, hide} for the workers view. */
export function mountWorkerStats(host) {
  const tbody = h("tbody");
  const table = h("table.table.worker-stats", { id: "worker-stats", "aria-labelledby": "h-worker-stats" },
    h("thead", {}, h("tr", {}, COLUMNS.map((key) => h("th", { scope: "col", "data-i18n": key })))), tbody);
  const panel = h("section.panel#worker-stats-panel", { "aria-labelledby": "h-worker-stats" },
    h("div.panel-head", {}, h("h2#h-worker-stats", { "data-i18n": "worker_stats" })), h("div.table-wrap", {}, table));
  host.append(panel);
  let answer = null;
  let timer = null;

  function render() {
    if (!answer) return;
    const now = answer.now;
    const bucketMinutes = Math.round(answer.bucket_seconds / 60);
    setChildren(tbody, answer.workers.map((w) => {
      const chart = h("div.spark-host");
      const cells = [
        h("td", {}, badge(w.state), " ", h("span.name", {}, w.name)),
        h("td.num", {}, fmtNumber(w.done)), h("td.num", {}, fmtNumber(w.failed)),
        h("td.num", {}, fmtNumber(w.jobs_per_hour, 1)), h("td.num", {}, `${fmtNumber(w.busy_percent, 1)} %`),
        h("td.num", {}, fmtSeconds(w.mean_run_seconds)),
        h("td.num", {}, w.online_since ? fmtSeconds(now - w.online_since) : "—"),
        h("td.nowrap", {}, fmtTime(w.last_seen)), h("td", {}, chart)];
      cells.forEach((cell, i) => { cell.dataset.label = t(COLUMNS[i]); });
      const count = w.done_per_bucket.length;
      sparkBars(chart, w.done_per_bucket, { label: t("spark_label", { name: w.name }),
        describe: (n, i) => t("spark_bucket", { n, ago: (count - i) * bucketMinutes }) });
      return h("tr", { dataset: { statsWorkerId: w.id } }, cells);
    }));
  }

  async function load() {
    try {
      answer = await api.workerStats();
    } catch {
      panel.hidden = true; // the workers table above already says why the gateway cannot be read
      return;
    }
    panel.hidden = false;
    render();
  }

  onLanguage(render);
  return {
    show() { load(); timer = setInterval(load, REFRESH_MS); },
    hide() { clearInterval(timer); },
  };
}
