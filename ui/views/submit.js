// Submit: paste or load an API-format workflow (or take the no-model sample), choose priority, follow the run.

import { api } from "../api.js";
import { h, setText, setChildren, fmtTime, fmtSeconds, progressBar, setProgress, badge, busy, showError,
  clearError, shortId } from "../dom.js";
import { t, onLanguage } from "../i18n.js";
import { state, on, upsertJob } from "../live.js";
import { sampleWorkflow } from "../sample.js";
import { showOutputs } from "./outputs.js";
import { jobActions, nodesNote } from "./job_detail.js";

const FINAL = ["done", "failed"];

/** Parse the editor's text into an API-format prompt, or throw an Error with a plain message. */
export function parseWorkflow(text) {
  if (!text.trim()) throw new Error(t("err.workflow_empty"));
  let data;
  try {
    data = JSON.parse(text);
  } catch (exc) {
    throw new Error(t("err.workflow_json", { detail: exc.message }));
  }
  if (data && typeof data === "object" && !Array.isArray(data) && data.prompt && typeof data.prompt === "object") {
    data = data.prompt; // a whole /prompt body was pasted
  }
  if (!data || typeof data !== "object" || Array.isArray(data)) throw new Error(t("err.workflow_object"));
  if (Array.isArray(data.nodes) && Array.isArray(data.links)) throw new Error(t("err.workflow_ui_format"));
  const bad = Object.entries(data).find(([, node]) => !node || typeof node !== "object" || typeof node.class_type !== "string");
  if (bad) throw new Error(t("err.workflow_node", { id: bad[0] }));
  return data;
}

function nodeErrorList(body) {
  const nodeErrors = body && body.node_errors;
  if (!nodeErrors || typeof nodeErrors !== "object" || !Object.keys(nodeErrors).length) return null;
  return h("ul.node-errors", {}, Object.entries(nodeErrors).map(([node, info]) => h("li", {},
    h("strong", {}, `${t("node")} ${node}${info.class_type ? ` (${info.class_type})` : ""}: `),
    (info.errors || []).map((e) => `${e.message}${e.details ? ` — ${e.details}` : ""}`).join("; "))));
}

export function mount(container) {
  const editor = h("textarea#workflow", { spellcheck: "false", rows: "18", autocomplete: "off",
    "aria-describedby": "workflow-hint", placeholder: '{ "1": { "class_type": "...", "inputs": { } } }' });
  const fileInput = h("input#workflow-file.visually-hidden", { type: "file", accept: ".json,application/json" });
  const sampleButton = h("button.btn#load-sample", { type: "button", "data-i18n": "load_sample" });
  const fileButton = h("button.btn", { type: "button", "data-i18n": "load_file" });
  const formatButton = h("button.btn", { type: "button", "data-i18n": "format_json" });
  const priority = h("input#priority", { type: "number", step: "1", placeholder: "0", "aria-describedby": "priority-hint" });
  const clientId = h("input#client-id", { type: "text", spellcheck: "false", autocomplete: "off" });
  const submitButton = h("button.btn.primary#submit-job", { type: "submit", "data-i18n": "submit" });
  const summary = h("div.muted.small#workflow-summary");
  const submitError = h("div.form-error-anchor");
  const runs = h("div.runs", { "aria-live": "polite" });
  const form = h("form.panel.submit-form", { "aria-labelledby": "h-submit", novalidate: true },
    h("div.panel-head", {}, h("h2#h-submit", { "data-i18n": "nav.submit" })),
    h("div.editor-tools", {}, sampleButton, fileButton, formatButton, fileInput),
    h("label", { for: "workflow", "data-i18n": "workflow_label" }),
    editor,
    h("div.hint#workflow-hint", { "data-i18n": "workflow_hint" }),
    summary,
    h("div.form-row", {},
      h("div.field", {}, h("label", { for: "priority", "data-i18n": "col.priority" }), priority,
        h("div.hint#priority-hint", { "data-i18n": "priority_hint" })),
      h("div.field", {}, h("label", { for: "client-id", "data-i18n": "client_id_optional" }), clientId)),
    submitError,
    h("div.dialog-actions", {}, h("span.spacer"), submitButton));
  const el = h("div.view-submit.grid-2",
    form,
    h("section.panel", { "aria-labelledby": "h-runs" },
      h("div.panel-head", {}, h("h2#h-runs", { "data-i18n": "your_runs" })), runs));
  container.append(el);

  const cards = new Map(); // prompt_id -> card

  function describe() {
    try {
      const prompt = parseWorkflow(editor.value);
      const types = [...new Set(Object.values(prompt).map((n) => n.class_type))];
      setText(summary, t("workflow_summary", { n: Object.keys(prompt).length, types: types.slice(0, 6).join(", ")
        + (types.length > 6 ? ", …" : "") }));
      clearError(editor);
    } catch {
      setText(summary, "");
    }
  }

  function setEditor(text) {
    editor.value = text;
    clearError(editor);
    describe();
  }

  sampleButton.addEventListener("click", () => setEditor(JSON.stringify(sampleWorkflow(), null, 2)));
  fileButton.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (file) setEditor(await file.text());
    fileInput.value = "";
  });
  editor.addEventListener("dragover", (event) => { event.preventDefault(); editor.classList.add("drop"); });
  editor.addEventListener("dragleave", () => editor.classList.remove("drop"));
  editor.addEventListener("drop", async (event) => {
    event.preventDefault();
    editor.classList.remove("drop");
    const file = event.dataTransfer.files[0];
    if (file) setEditor(await file.text());
  });
  editor.addEventListener("input", describe);
  formatButton.addEventListener("click", () => {
    try {
      setEditor(JSON.stringify(JSON.parse(editor.value), null, 2));
    } catch (exc) {
      showError(editor, t("err.workflow_json", { detail: exc.message }));
    }
  });

  function addCard(promptId, answer) {
    const bar = progressBar(0, t("progress_of", { id: shortId(promptId) }));
    const head = h("div.run-head", {}, h("a.mono", { href: `#/jobs?job=${promptId}` }, shortId(promptId)),
      h("span.run-state"), h("span.muted.run-worker"), h("span.spacer"), h("span.muted.small.run-time"));
    const note = h("div.small.muted.run-note");
    const actions = h("div.run-actions");
    const error = h("div.run-error");
    const outputs = h("div.outputs");
    const card = h("article.run", { dataset: { promptId } }, head, bar, note, actions, error, outputs);
    runs.querySelector(".empty")?.remove();
    runs.prepend(card);
    const entry = { card, bar, head, note, actions, error, outputs, state: null, answer };
    cards.set(promptId, entry);
    return entry;
  }

  function renderCard(entry, job) {
    const [, stateEl, workerEl, , timeEl] = entry.head.children;
    setProgress(entry.bar, job.progress ? job.progress.percent : 0, job.state);
    setText(workerEl, job.worker ? `→ ${job.worker}` : "");
    setText(timeEl, job.run_seconds ? fmtSeconds(job.run_seconds) : fmtTime(job.created_at));
    setText(entry.note, job.state === "running" ? nodesNote(job)
      : job.state === "queued" && job.queue_position !== null && job.queue_position !== undefined
        ? t("position_n", { n: job.queue_position + 1 }) : "");
    if (entry.state === job.state) return;
    entry.state = job.state;
    entry.card.dataset.state = job.state;
    setChildren(stateEl, badge(job.state));
    setChildren(entry.actions, FINAL.includes(job.state) ? null : jobActions(job, { compact: true,
      onChange: (j) => renderCard(entry, j) }));
    if (job.error) {
      setChildren(entry.error, h("div.error-box", { role: "alert" }, h("strong", {}, t(`errtype.${job.error.type}`, {}, job.error.type)),
        " ", job.error.message || ""));
    }
    if (job.state === "done") showOutputs(entry.outputs, job.prompt_id);
  }

  async function poll(promptId) {
    // The event stream brings progress; this slow poll only covers a lost stream.
    const entry = cards.get(promptId);
    while (entry && !FINAL.includes(entry.state)) {
      await new Promise((resolve) => setTimeout(resolve, state.connected ? 5000 : 1500));
      if (FINAL.includes(entry.state)) break;
      try {
        const job = await api.task(promptId);
        upsertJob(job);
        renderCard(entry, job);
      } catch { /* keep trying; the stream may still deliver */ }
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearError(editor);
    clearError(priority);
    clearError(submitError);
    let prompt;
    try {
      prompt = parseWorkflow(editor.value);
    } catch (exc) {
      showError(editor, exc.message);
      editor.focus();
      return;
    }
    const body = { prompt };
    if (priority.value !== "") {
      const value = Number(priority.value);
      if (!Number.isInteger(value)) { showError(priority, t("err.priority_integer")); priority.focus(); return; }
      body.priority = value;
    }
    if (clientId.value.trim()) body.client_id = clientId.value.trim();
    busy(submitButton, async () => {
      try {
        const answer = await api.submit(body);
        const entry = addCard(answer.prompt_id, answer);
        const known = state.jobs.get(answer.prompt_id);
        renderCard(entry, known || { prompt_id: answer.prompt_id, state: "queued", progress: { percent: 0 },
          created_at: Date.now() / 1000 });
        poll(answer.prompt_id);
      } catch (error) {
        const target = error.field === "priority" ? priority : error.field === "client_id" ? clientId : submitError;
        const box = showError(target, error);
        const list = nodeErrorList(error.body);
        if (box && list) box.append(list);
      }
    }, submitError);
  });

  on("job", (data) => {
    const entry = cards.get(data.job.prompt_id);
    if (entry) renderCard(entry, data.job);
  });
  onLanguage(describe);

  return {
    el,
    show() {
      if (!cards.size) setChildren(runs, h("p.empty", { "data-i18n": "no_runs" }, t("no_runs")));
      else runs.querySelector(".empty")?.remove();
    },
    hide() {},
  };
}
