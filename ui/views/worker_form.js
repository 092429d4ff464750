// The add/edit worker dialog: fields, per-worker auth (password shown only as "set"), test before saving.

import { api } from "../api.js";
import { h, setChildren, showError, clearError, busy, confirmDialog } from "../dom.js";
import { t } from "../i18n.js";
import { fmtBytes, fmtNumber } from "../dom.js";

let counter = 0;

function field(name, labelKey, input, hint) {
  const id = `wf-${name}-${++counter}`;
  input.id = id;
  input.name = name;
  const hintEl = hint ? h("div.hint", { id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  return h("div.field", { dataset: { field: name } }, h("label", { for: id }, t(labelKey)), input, hintEl);
}

/** Open the dialog for `worker` (null to add one); onSaved(worker) after a successful save. */
export function openWorkerDialog(worker, onSaved) {
  const editing = Boolean(worker);
  const inputs = {
    name: h("input", { type: "text", value: editing ? worker.name : "", autocomplete: "off", maxlength: "128",
      placeholder: t("placeholder.name") }),
    url: h("input", { type: "text", value: editing ? worker.url : "", required: true, autocomplete: "off",
      placeholder: "http://192.168.1.20:8188", spellcheck: "false" }),
    weight: h("input", { type: "number", value: editing ? worker.weight : 1, min: "0.01", max: "1000", step: "any" }),
    max_queue: h("input", { type: "number", value: editing ? worker.max_queue : "", min: "1", max: "1000", step: "1",
      placeholder: t("placeholder.default") }),
    enabled: h("input", { type: "checkbox", checked: editing ? worker.enabled : true }),
    auth_username: h("input", { type: "text", value: editing ? worker.auth_username || "" : "", autocomplete: "off",
      spellcheck: "false" }),
    auth_password: h("input", { type: "password", value: "", autocomplete: "new-password",
      placeholder: editing && worker.auth_password_set ? t("password_set_placeholder") : t("password_none_placeholder") }),
  };
  const clearPassword = h("input", { type: "checkbox", id: `wf-clear-${++counter}` });
  const passwordState = editing && worker.auth_password_set
    ? h("div.hint", {}, h("span.chip.ok", {}, t("set")), " ", h("label.inline", { for: clearPassword.id }, clearPassword, t("remove_password")))
    : null;
  // Credentials belong to an address: the gateway drops a saved password when scheme, host or port change.
  const movedNote = h("div.hint.warn", { role: "status", hidden: true }, t("hint.password_dropped"));
  const originOf = (text) => {
    try {
      const u = new URL(/:\/\//.test(text) ? text : `http://${text}`);
      return `${u.protocol}//${u.hostname}:${u.port || (u.protocol === "https:" ? "443" : "80")}`;
    } catch { return text; }
  };
  const moved = () => editing && originOf(inputs.url.value.trim()) !== originOf(worker.url);
  inputs.url.addEventListener("input", () => { movedNote.hidden = !(moved() && worker.auth_password_set); });
  const report = h("div.form-report", { role: "status", "aria-live": "polite" });
  const formError = h("div.form-error-anchor");
  const testButton = h("button.btn", { type: "button" }, t("test_connection"));
  let lastTest = null; // {url, ok} of the last connection test in this dialog
  const cancelButton = h("button.btn", { type: "button" }, t("cancel_action"));
  const saveButton = h("button.btn.primary", { type: "submit" }, editing ? t("save") : t("add_worker"));
  const form = h("form.form", { method: "dialog", novalidate: true },
    h("h2", {}, editing ? t("edit_worker", { name: worker.name }) : t("add_worker")),
    h("div.form-grid", {},
      field("url", "field.url", inputs.url, t("hint.url")),
      field("name", "field.name", inputs.name),
      field("weight", "field.weight", inputs.weight, t("hint.weight")),
      field("max_queue", "field.max_queue", inputs.max_queue, t("hint.max_queue")),
      h("div.field.check", { dataset: { field: "enabled" } },
        h("label.inline", {}, inputs.enabled, t("field.enabled")))),
    h("fieldset", {}, h("legend", {}, t("auth_legend")),
      h("p.hint", {}, t("hint.auth")),
      h("div.form-grid", {},
        field("auth_username", "field.auth_username", inputs.auth_username),
        h("div", {}, field("auth_password", "field.auth_password", inputs.auth_password), passwordState, movedNote))),
    formError, report,
    h("div.dialog-actions", {}, testButton, h("span.spacer"), cancelButton, saveButton));
  const dialog = h("dialog.worker-dialog", { "aria-label": editing ? t("edit_worker", { name: worker.name }) : t("add_worker") }, form);
  document.body.append(dialog);

  const close = () => { dialog.close(); dialog.remove(); };
  cancelButton.addEventListener("click", close);
  dialog.addEventListener("cancel", (event) => { event.preventDefault(); close(); });
  clearPassword.addEventListener("change", () => {
    inputs.auth_password.disabled = clearPassword.checked;
    if (clearPassword.checked) inputs.auth_password.value = "";
  });

  function clearErrors() {
    for (const input of Object.values(inputs)) clearError(input);
    clearError(formError);
  }

  function showApiError(error) {
    const input = error.field && inputs[error.field];
    if (input) {
      showError(input, error);
      input.focus();
    } else {
      showError(formError, error);
    }
  }

  function body() {
    const out = {};
    const url = inputs.url.value.trim();
    const name = inputs.name.value.trim();
    const weight = inputs.weight.value === "" ? null : Number(inputs.weight.value);
    const maxQueue = inputs.max_queue.value === "" ? null : Number(inputs.max_queue.value);
    const user = inputs.auth_username.value.trim();
    const password = inputs.auth_password.value;
    if (!editing || url !== worker.url) out.url = url;
    if (editing ? name !== worker.name : name) out.name = name;
    if (weight !== null && (!editing || weight !== worker.weight)) out.weight = weight;
    if (maxQueue !== null && (!editing || maxQueue !== worker.max_queue)) out.max_queue = maxQueue;
    if (!editing || inputs.enabled.checked !== worker.enabled) out.enabled = inputs.enabled.checked;
    if (!editing ? user : user !== (worker.auth_username || "") || moved()) out.auth_username = user || null;
    if (password) out.auth_password = password;
    else if (clearPassword.checked) out.auth_password = null;
    return out;
  }

  function validate() {
    if (!inputs.url.value.trim()) {
      showError(inputs.url, t("err.url_required"));
      inputs.url.focus();
      return false;
    }
    for (const name of ["weight", "max_queue"]) {
      if (!inputs[name].checkValidity()) {
        showError(inputs[name], t("err.number_range"));
        inputs[name].focus();
        return false;
      }
    }
    return true;
  }

  testButton.addEventListener("click", () => {
    clearErrors();
    if (!validate()) return;
    setChildren(report, h("span.muted", {}, t("testing")));
    busy(testButton, async () => {
      const url = inputs.url.value.trim();
      const user = inputs.auth_username.value.trim();
      const password = inputs.auth_password.value;
      const unchanged = editing && url === worker.url && user === (worker.auth_username || "") && !password
        && !clearPassword.checked;
      try {
        const answer = unchanged ? await api.testWorker(worker.id)
          : await api.probeUrl({ url, auth_username: user || null, auth_password: password || null });
        lastTest = { url, ok: Boolean(answer.ok) };
        setChildren(report, h("div.test-report", { dataset: { ok: String(answer.ok) } }, reportBody(answer)));
      } catch (error) {
        setChildren(report);
        throw error;
      }
    }, formError);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    if (!validate()) return;
    const changes = body();
    if (editing && !Object.keys(changes).length) { close(); return; }
    // A worker that just failed its test would be saved to stay offline: say so and let the user choose.
    const url = inputs.url.value.trim();
    if (lastTest && !lastTest.ok && lastTest.url === url
      && !(await confirmDialog(t("confirm_save_failed_test", { url }), t("save_anyway")))) return;
    busy(saveButton, async () => {
      try {
        const saved = editing ? await api.updateWorker(worker.id, changes) : await api.addWorker(changes);
        onSaved(saved);
        close();
      } catch (error) {
        showApiError(error);
      }
    });
  });

  dialog.showModal();
  (editing ? inputs.name : inputs.url).focus();
  return dialog;
}

/** The plain-words summary of what a worker answered to a connection test. */
export function reportBody(answer) {
  if (!answer.ok) {
    return h("div.report-text", {}, h("strong.error-text", {}, t("test_failed")), " ",
      h("span", {}, answer.error || ""));
  }
  const system = answer.system || {};
  const device = (answer.devices || [])[0] || {};
  const parts = [
    [t("latency"), answer.latency_ms !== null && answer.latency_ms !== undefined ? `${fmtNumber(answer.latency_ms, 1)} ms` : "—"],
    ["ComfyUI", system.comfyui_version || "—"],
    ["Python", (system.python_version || "—").split(" ")[0]],
    [t("device"), device.name || "—"],
    ["VRAM", device.vram_total ? `${fmtBytes(device.vram_total - (device.vram_free || 0))} / ${fmtBytes(device.vram_total)}` : "—"],
    [t("col.queue"), t("queue_report", { running: answer.queue_running ?? 0, pending: answer.queue_pending ?? 0 })],
  ];
  return h("div.report-text", {}, h("strong.ok-text", {}, t("test_ok")),
    h("dl.kv", {}, parts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}
