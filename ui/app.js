// The admin page: hash routing between views, language switch, live connection indicator.

import { applyLanguage, language, setLanguage, t, onLanguage } from "./i18n.js";
import { connect, on, refreshWorkers, refreshRunningJobs, state } from "./live.js";
import { h } from "./dom.js";
import { migrateOldToken } from "./api.js";
import * as overview from "./views/overview.js";
import * as workers from "./views/workers.js";
import * as jobs from "./views/jobs.js";
import * as submit from "./views/submit.js";
import * as settings from "./views/settings.js";

const MODULES = { overview, workers, jobs, submit, settings };

function navigate(hash) {
  if (location.hash !== hash) location.hash = hash;
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [name, query = ""] = raw.split("?");
  return { name: MODULES[name] ? name : "overview", params: new URLSearchParams(query) };
}

function start() {
  const main = document.getElementById("main");
  const views = {};
  for (const [name, module] of Object.entries(MODULES)) {
    const section = h("section.view", { dataset: { view: name }, hidden: true, "aria-labelledby": `tab-${name}` });
    main.append(section);
    views[name] = { section, ...module.mount(section, { navigate }) };
  }
  let current = null;
  function route() {
    const { name, params } = parseHash();
    if (current && current !== name) {
      views[current].hide();
      views[current].section.hidden = true;
    }
    const view = views[name];
    view.section.hidden = false;
    const changed = current !== name;
    current = name;
    for (const link of document.querySelectorAll(".tabs a")) {
      link.id = `tab-${link.dataset.view}`;
      if (link.dataset.view === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.body.dataset.view = name;
    view.show(params);
    if (changed) window.scrollTo(0, 0);
  }
  window.addEventListener("hashchange", route);

  const langSelect = document.getElementById("lang-select");
  langSelect.value = language();
  langSelect.addEventListener("change", () => setLanguage(langSelect.value));

  const conn = document.getElementById("conn");
  const connText = document.getElementById("conn-text");
  const showConnection = () => {
    conn.dataset.state = state.connected ? "on" : "off";
    connText.textContent = state.connected ? t("live") : t("offline_stream");
  };
  on("connection", showConnection);
  onLanguage(showConnection);
  on("resync", () => { refreshWorkers().catch(() => {}); refreshRunningJobs().catch(() => {}); });

  // The editor link needs no token of its own: the page's sign-in cookie (path /) reaches /comfy/ too.

  applyLanguage();
  showConnection();
  route();
  refreshWorkers().catch(() => {});
  refreshRunningJobs().catch(() => {});
  connect();
  // Worker events carry no "deleted" marker yet, so a slow reload also drops workers removed elsewhere.
  setInterval(() => { if (!document.hidden) refreshWorkers().catch(() => {}); }, 30000);
}

if (!migrateOldToken()) start();
