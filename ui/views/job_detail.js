// One job's detail dialog: status, live progress, timings, error, outputs, and the actions it allows.

import { api, withToken } from "../api.js";
import { h, setChildren, setText, fmtTime, fmtSeconds, progressBar, setProgress, badge, busy, confirmDialog,
  showError, waitSeconds, throttle } from "../dom.js";
import { t } from "../i18n.js";
import { on, upsertJob } from "../live.js";
import { showOutputs } from "./outputs.js";

const WAITING = ["queued", "submitted"];

/** The buttons a job in its state allows: cancel (waiting), interrupt (running), priority (queued). */
export function jobActions(job, { compact = false, onChange = () => {} } = {}) {
  const wrap = h("div.actions");
  const report = (answer) => { if (answer) { upsertJob(answer); onChange(answer); } };
  if (WAITING.includes(job.state)) {
    const cancel = h("button.btn.small.danger-text", { type: "button", "aria-label": `${t("cancel_job")} ${job.prompt_id}` },
      t("cancel_job"));
    cancel.addEventListener("click", async () => {
      if (!(await confirmDialog(t("confirm_cancel_job", { id: job.prompt_id.slice(0, 8) }), t("cancel_job")))) return;
      await busy(cancel, async () => {
        await api.cancel([job.prompt_id]);
        report(await api.task(job.prompt_id));
      }, wrap);
    });
    wrap.append(cancel);
  }
  if (job.state === "running") {
    const stop = h("button.btn.small.danger-text", { type: "button", "aria-label": `${t("interrupt")} ${job.prompt_id}` },
      t("interrupt"));
    stop.addEventListener("click", async () => {
      if (!(await confirmDialog(t("confirm_interrupt", { id: job.prompt_id.slice(0, 8) }), t("interrupt")))) return;
      await busy(stop, async () => {
        await api.interrupt(job.prompt_id);
        report(await api.task(job.prompt_id));
      }, wrap);
    });
    wrap.append(stop);
  }
  if (job.state === "queued" && !compact) {
    const input = h("input.priority-input", { type: "number", step: "1", value: job.priority,
      "aria-label": t("new_priority") });
    const save = h("button.btn.small", { type: "button" }, t("set_priority"));
    save.addEventListener("click", () => busy(save, async () => {
      const value = Number(input.value);
      if (!Number.isInteger(value)) throw new Error(t("err.priority_integer"));
      report(await api.setPriority(job.prompt_id, value));
    }, wrap));
    wrap.append(h("label.inline", {}, t("col.priority"), input), save);
  }
  return wrap;
}

/** "3 of 4 nodes done · node 2: 7/20" while running; just the node count otherwise. */
export function nodesNote(job) {
  const p = job.progress || {};
  if (!p.nodes_total) return "";
  const text = t("nodes_done", { done: p.nodes_done || 0, total: p.nodes_total });
  if (job.state !== "running" || p.node === null || p.node === undefined) return text;
  return `${text} · ${t("node_step", { type: p.node_type || t("node"), node: p.node, value: p.value || 0,
    max: p.max || 0 })}`;
}

/** One timeline step in words: "sent to gpu-2", "worker gpu-1 lost", "retried · sent to gpu-3"... */
function stepText(step, previous) {
  const worker = step.worker || (step.worker_id !== null && step.worker_id !== undefined ? `#${step.worker_id}` : "—");
  switch (step.kind) {
    case "sent": {
      const text = t("tl.sent", { worker });
      return previous && ["lost", "requeued"].includes(previous.kind) ? `${t("tl.retried")} · ${text}` : text;
    }
    case "started": return t("tl.started", { worker });
    case "lost": return t("tl.lost", { worker });
    case "requeued": return t("tl.requeued", { worker });
    case "priority": return t("tl.priority", { n: step.detail });
    case "done": return t("tl.done");
    case "failed": {
      const type = (step.detail || "").split(":")[0];
      if (type === "cancelled") return t("tl.cancelled");
      return t("tl.failed", { error: t(`errtype.${type}`, {}, step.detail || "") });
    }
    default: return t("tl.queued");
  }
}

/** The job's timeline as a list of "time — step" lines. */
function renderTimeline(host, steps) {
  setChildren(host, steps.map((step, i) => h("li", { dataset: { kind: step.kind } },
    h("time.mono", { datetime: new Date(step.at * 1000).toISOString() }, fmtTime(step.at)), " ",
    h("span", { title: step.detail || "" }, stepText(step, steps[i - 1])))));
}

function errorBlock(error) {
  if (!error) return null;
  const { type, message, ...rest } = error;
  const extra = Object.keys(rest).length ? h("details", {}, h("summary", {}, t("error_details")),
    h("pre", {}, JSON.stringify(rest, null, 2))) : null;
  return h("div.error-box", { role: "alert" }, h("strong", {}, t(`errtype.${type}`, {}, type || "error")), " ",
    h("span", {}, message || ""), extra);
}

/** Open the detail dialog of job `promptId`. */
export function openJobDetail(promptId, { onClose } = {}) {
  const body = h("div.detail-body", {}, h("span.muted", {}, t("loading")));
  const title = h("h2", {}, t("job"), " ", h("span.mono", {}, promptId));
  const closeButton = h("button.btn", { type: "button" }, t("close"));
  const dialog = h("dialog.job-dialog", { "aria-label": `${t("job")} ${promptId}` },
    h("div.dialog-head", {}, title, closeButton), body);
  document.body.append(dialog);
  let unsubscribe = () => {};
  const close = () => { unsubscribe(); dialog.close(); dialog.remove(); if (onClose) onClose(); };
  closeButton.addEventListener("click", close);
  dialog.addEventListener("cancel", (event) => { event.preventDefault(); close(); });
  dialog.showModal();
  load(promptId, body, (fn) => { unsubscribe = fn; });
  return { dialog, close };
}

async function load(promptId, body, setUnsubscribe) {
  let job;
  try {
    job = await api.task(promptId);
  } catch (error) {
    setChildren(body);
    showError(body, error);
    return;
  }
  const bar = progressBar(job.progress ? job.progress.percent : 0);
  const stateCell = h("dd");
  const workerCell = h("dd");
  const timing = {};
  const actionsHost = h("div.detail-actions");
  const errorHost = h("div");
  const outputs = h("div.outputs");
  const progressNote = h("div.muted.small");
  const dl = h("dl.kv.detail-kv", {},
    h("dt", {}, t("col.state")), stateCell,
    h("dt", {}, t("col.worker")), workerCell,
    h("dt", {}, t("col.priority")), (timing.priority = h("dd")),
    h("dt", {}, t("col.client")), h("dd.mono", {}, job.client_id || "—"),
    h("dt", {}, t("attempts")), (timing.attempts = h("dd")),
    h("dt", {}, t("created")), (timing.created = h("dd")),
    h("dt", {}, t("started")), (timing.started = h("dd")),
    h("dt", {}, t("finished")), (timing.finished = h("dd")),
    h("dt", {}, t("col.wait")), (timing.wait = h("dd")),
    h("dt", {}, t("col.run")), (timing.run = h("dd")));
  const timeline = h("ol.timeline");
  setChildren(body, h("div.detail-top", {}, dl,
    h("div", {}, h("h3", {}, t("progress")), bar, progressNote, actionsHost, errorHost,
      h("h3", {}, t("timeline")), timeline)),
  h("h3", {}, t("outputs")), outputs,
  h("p.small", {}, h("a.link", { href: withToken(`/api/task/${promptId}/status`), target: "_blank" }, t("raw_status")), " · ",
    h("a.link", { href: withToken(`/api/history/${promptId}`), target: "_blank" }, t("raw_history"))));

  let shownState = null;
  function render(current) {
    job = current;
    setChildren(stateCell, badge(job.state), job.queue_position !== null && job.queue_position !== undefined
      ? h("span.muted", {}, ` ${t("position_n", { n: job.queue_position })}`) : null); // already 1-based
    setText(workerCell, job.worker || "—");
    setText(timing.priority, job.priority);
    setText(timing.attempts, job.attempts);
    setText(timing.created, fmtTime(job.created_at));
    setText(timing.started, fmtTime(job.started_at));
    setText(timing.finished, fmtTime(job.finished_at));
    setText(timing.wait, fmtSeconds(waitSeconds(job)));
    setText(timing.run, fmtSeconds(job.run_seconds));
    const p = job.progress || {};
    setProgress(bar, p.percent || 0, job.state);
    setText(progressNote, nodesNote(job));
    if (shownState !== job.state) {
      shownState = job.state;
      setChildren(actionsHost, jobActions(job, { onChange: render }));
      setChildren(errorHost, errorBlock(job.error));
      if (job.state === "done") showOutputs(outputs, promptId);
      else setChildren(outputs, h("span.muted", {}, job.state === "failed" ? t("no_outputs") : t("outputs_later")));
    }
  }
  const loadTimeline = throttle(() => api.timeline(promptId).then((answer) => renderTimeline(timeline, answer.steps))
    .catch((error) => showError(timeline, error)), 500);
  render(job);
  loadTimeline();
  setUnsubscribe(on("job", (data) => {
    if (data.job && data.job.prompt_id === promptId) {
      render({ ...job, ...data.job });
      if (data.event !== "progress") loadTimeline();
    }
  }));
}
