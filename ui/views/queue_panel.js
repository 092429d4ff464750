// The gateway queue panel of the overview: the waiting jobs in the order they will be dispatched, with
// their position, and "First" / "Last" to re-order one (by a priority just above the first or below the last).

import { api } from "../api.js";
import { h, setChildren, setText, shortId, busy, showError, clearError, throttle, fmtNumber } from "../dom.js";
import { t, onLanguage } from "../i18n.js";
import { on } from "../live.js";

const SHOWN = 10;

/** Mount the panel into `host`; returns {show, hide} for the overview. */
export function mountQueuePanel(host) {
  const list = h("ol.queue-list", { id: "gateway-queue" });
  const count = h("span.muted.count");
  const panel = h("section.panel", { "aria-labelledby": "h-gateway-queue", id: "queue-panel" },
    h("div.panel-head", {}, h("h2#h-gateway-queue", { "data-i18n": "gateway_queue" }), count), list);
  host.append(panel);
  let page = { items: [], total: 0 };
  let visible = false;

  function move(job, first) {
    const priorities = page.items.map((j) => j.priority);
    // Bigger priority runs first: one above the current first, or one below the current last.
    const target = first ? Math.max(...priorities) + 1 : Math.min(...priorities) - 1;
    return api.setPriority(job.prompt_id, target);
  }

  function render() {
    setText(count, t("queue_total", { n: fmtNumber(page.total) }));
    if (!page.items.length) {
      setChildren(list, h("li.empty", {}, t("queue_empty")));
      return;
    }
    setChildren(list, page.items.map((job) => {
      const first = h("button.btn.small.move-first", { type: "button",
        "aria-label": t("move_first_label", { id: shortId(job.prompt_id) }) }, t("move_first"));
      const last = h("button.btn.small.move-last", { type: "button",
        "aria-label": t("move_last_label", { id: shortId(job.prompt_id) }) }, t("move_last"));
      const item = h("li", { dataset: { promptId: job.prompt_id } },
        h("span.position.num", {}, `#${job.queue_position}`),
        h("a.mono", { href: `#/jobs?job=${job.prompt_id}` }, shortId(job.prompt_id)),
        h("span.muted", {}, `${t("col.priority")} ${job.priority}`), h("span.spacer"), first, last);
      first.addEventListener("click", () => busy(first, async () => { await move(job, true); await load(); }, item));
      last.addEventListener("click", () => busy(last, async () => { await move(job, false); await load(); }, item));
      first.disabled = job.queue_position === 1;
      last.disabled = job.queue_position === page.total;
      return item;
    }));
  }

  async function load() {
    try {
      page = await api.queueOrder({ limit: SHOWN });
      clearError(list);
    } catch (error) {
      showError(list, error);
      return;
    }
    render();
  }

  const loadSoon = throttle(() => { if (visible) load(); }, 1000);
  on("job", (data) => { if (data.event !== "progress") loadSoon(); });
  on("resync", loadSoon);
  onLanguage(() => { if (visible) render(); });
  return {
    show() { visible = true; load(); },
    hide() { visible = false; },
  };
}
