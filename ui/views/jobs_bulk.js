// Bulk actions on the jobs list: select jobs, then cancel them, set their priority or submit them again;
// clear the whole gateway queue. Every destructive action asks first.

import { api } from "../api.js";
import { h, setText, busy, confirmDialog, showError, fmtNumber } from "../dom.js";
import { t, onLanguage } from "../i18n.js";

const WAITING = ["queued", "submitted"];
const FINISHED = ["done", "failed"];

/** The selection checkboxes, the bar of actions for the selected jobs and the "clear the queue" button.
 * rows(): the jobs view's row map (prompt_id -> {job}); reload(): reload the list after an action. */
export function mountBulk({ rows, reload }) {
  const selected = new Map(); // prompt_id -> the job as last shown
  const count = h("span.bulk-count", { "aria-live": "polite" });
  const cancelButton = h("button.btn.small.danger-text#bulk-cancel", { type: "button", "data-i18n": "bulk_cancel" });
  const priorityInput = h("input#bulk-priority-value.priority-input", { type: "number", step: "1", value: "0",
    "data-i18n-label": "new_priority", "aria-label": t("new_priority") });
  const priorityButton = h("button.btn.small#bulk-priority", { type: "button", "data-i18n": "bulk_priority" });
  const retryButton = h("button.btn.small#bulk-retry", { type: "button", "data-i18n": "bulk_retry" });
  const note = h("span.muted.small.bulk-note", { role: "status" });
  const bar = h("div.bulk-bar", { hidden: true, role: "region", "aria-label": t("n_selected", { n: 0 }) },
    count, cancelButton, h("span.bulk-priority", {}, priorityInput, priorityButton), retryButton, note);
  const clearButton = h("button.btn.small.danger-text#clear-queue", { type: "button", "data-i18n": "clear_queue" });
  const selectAll = h("input#select-all", { type: "checkbox", "data-i18n-label": "select_all",
    "aria-label": t("select_all") });

  function update() {
    bar.hidden = selected.size === 0;
    setText(count, t("n_selected", { n: fmtNumber(selected.size) }));
    const jobs = [...selected.values()];
    cancelButton.disabled = !jobs.some((j) => WAITING.includes(j.state) || j.state === "running");
    priorityButton.disabled = !jobs.some((j) => j.state === "queued");
    retryButton.disabled = !jobs.some((j) => FINISHED.includes(j.state));
    const shown = [...rows().keys()];
    selectAll.checked = shown.length > 0 && shown.every((id) => selected.has(id));
    selectAll.indeterminate = !selectAll.checked && shown.some((id) => selected.has(id));
  }

  function checkbox(job) {
    const box = h("input.select-job", { type: "checkbox", checked: selected.has(job.prompt_id),
      "aria-label": t("select_job", { id: job.prompt_id.slice(0, 8) }) });
    box.addEventListener("change", () => {
      const row = rows().get(job.prompt_id);
      if (box.checked) selected.set(job.prompt_id, (row && row.job) || job); else selected.delete(job.prompt_id);
      update();
    });
    return box;
  }

  selectAll.addEventListener("change", () => {
    for (const [id, row] of rows()) {
      if (selectAll.checked) selected.set(id, row.job); else selected.delete(id);
      const box = row.tr.querySelector("input.select-job");
      if (box) box.checked = selectAll.checked;
    }
    update();
  });

  /** After the list re-rendered: the selected jobs take their newest state. */
  function sync() {
    for (const [id, row] of rows()) if (selected.has(id)) selected.set(id, row.job);
    update();
  }

  async function finish(done, total) {
    setText(note, t("bulk_done", { ok: fmtNumber(done), n: fmtNumber(total) }));
    selected.clear();
    for (const box of document.querySelectorAll("input.select-job")) box.checked = false;
    update();
    await reload();
  }

  cancelButton.addEventListener("click", async () => {
    const jobs = [...selected.values()].filter((j) => WAITING.includes(j.state) || j.state === "running");
    if (!(await confirmDialog(t("confirm_bulk_cancel", { n: jobs.length }), t("bulk_cancel")))) return;
    await busy(cancelButton, async () => {
      const waiting = jobs.filter((j) => WAITING.includes(j.state)).map((j) => j.prompt_id);
      if (waiting.length) await api.cancel(waiting);
      const running = jobs.filter((j) => j.state === "running");
      const results = await Promise.allSettled(running.map((j) => api.interrupt(j.prompt_id)));
      await finish(waiting.length + results.filter((r) => r.status === "fulfilled").length, jobs.length);
    }, note);
  });

  priorityButton.addEventListener("click", () => busy(priorityButton, async () => {
    const value = Number(priorityInput.value);
    if (!Number.isInteger(value)) throw new Error(t("err.priority_integer"));
    const jobs = [...selected.values()].filter((j) => j.state === "queued");
    const results = await Promise.allSettled(jobs.map((j) => api.setPriority(j.prompt_id, value)));
    const failed = results.find((r) => r.status === "rejected");
    await finish(results.length - results.filter((r) => r.status === "rejected").length, jobs.length);
    if (failed) showError(note, failed.reason, { timeout: 12000 });
  }, note));

  retryButton.addEventListener("click", async () => {
    const jobs = [...selected.values()].filter((j) => FINISHED.includes(j.state));
    if (!(await confirmDialog(t("confirm_bulk_retry", { n: jobs.length }), t("bulk_retry")))) return;
    await busy(retryButton, async () => {
      const answer = await api.resubmit(jobs.map((j) => j.prompt_id));
      await finish(answer.submitted.length, jobs.length);
      if (answer.errors.length) {
        const { error } = answer.errors[0];
        showError(note, { status: 400, type: error.type, message: error.message }, { timeout: 12000 });
      }
    }, note);
  });

  clearButton.addEventListener("click", async () => {
    const waiting = await api.tasks({ state: "queued,submitted", limit: 1 });
    if (!(await confirmDialog(t("confirm_clear_queue", { n: fmtNumber(waiting.total) }), t("clear_queue")))) return;
    await busy(clearButton, async () => {
      await api.clearQueue();
      await finish(waiting.total, waiting.total);
    }, note);
  });

  onLanguage(update);
  return { bar, clearButton, selectAll, checkbox, sync };
}
