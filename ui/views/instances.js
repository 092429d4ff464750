// The Instances panel of the overview: the gateway processes sharing this store, which one dispatches
// (holds the lease), and the takeovers seen since the page opened.

import { api } from "../api.js";
import { h, setChildren, setText, fmtSeconds, fmtTime, showError, clearError } from "../dom.js";
import { t, onLanguage } from "../i18n.js";
import { on } from "../live.js";

const REFRESH_MS = 3000;

/** Mount the panel into `host`; returns {show, hide} for the overview. */
export function mountInstances(host) {
  const mode = h("span.muted", { id: "cluster-mode" });
  const table = h("table.table.instances", { id: "instances-table" },
    h("thead", {}, h("tr", {},
      ...["instance_name", "instance_address", "instance_version", "instance_role", "instance_uptime",
        "instance_heartbeat"].map((key) => h("th", { scope: "col", "data-i18n": key })))),
    h("tbody"));
  const takeovers = h("ul.takeovers", { id: "takeovers", "aria-live": "polite" });
  const panel = h("section.panel", { "aria-labelledby": "h-instances", id: "instances-panel" },
    h("div.panel-head", {}, h("h2#h-instances", { "data-i18n": "instances" }), mode),
    h("div.table-wrap", {}, table), takeovers);
  host.append(panel);

  let cluster = null;
  let timer = null;
  const seen = [];

  function render() {
    if (!cluster) return;
    setText(mode, cluster.mode === "single" ? t("cluster_single")
      : t("cluster_mode", { n: cluster.instances.filter((i) => i.alive).length,
        bus: cluster.bus.up ? t("bus_up") : cluster.bus.configured ? t("bus_down") : t("bus_none") }));
    const rows = cluster.instances.map((item) => h("tr", { dataset: { alive: String(item.alive),
      leader: String(item.leader) } },
      h("td", {}, item.name, item.self ? h("span.muted", {}, ` (${t("instance_self")})`) : null),
      h("td.mono", {}, item.address || "—"),
      h("td", {}, item.version),
      h("td", {}, item.leader ? h("span.badge", { dataset: { state: "running" } }, t("role_dispatcher"))
        : item.alive ? t("role_follower") : h("span.badge", { dataset: { state: "offline" } }, t("instance_gone"))),
      h("td", {}, fmtSeconds(item.uptime_seconds)),
      h("td", { title: fmtTime(item.heartbeat_at) }, t("seconds_ago", { n: item.heartbeat_age.toFixed(1) }))));
    setChildren(table.tBodies[0], rows);
    setChildren(takeovers, seen.slice(-5).reverse().map((item) => h("li", {},
      t("takeover_line", { time: fmtTime(item.at), name: item.holder_name || "?", epoch: item.epoch }))));
  }

  async function load() {
    try {
      cluster = await api.cluster();
      clearError(panel);
    } catch (error) {
      showError(panel, error);
      return;
    }
    render();
  }

  on("cluster", (data) => {
    if (data && data.event === "takeover") {
      seen.push({ ...data, at: Date.now() / 1000 });
      load();
    }
  });
  onLanguage(render);
  return {
    show() { load(); clearInterval(timer); timer = setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS); },
    hide() { clearInterval(timer); timer = null; },
  };
}
