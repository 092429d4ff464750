// Output thumbnails from a job's history (each file entry carries a gateway /api/view url).

import { api, withToken } from "../api.js";
import { h, setChildren } from "../dom.js";
import { t } from "../i18n.js";

const IMAGE = /\.(png|jpe?g|webp|gif|bmp|avif)$/i;
const VIDEO = /\.(mp4|webm|mov|mkv)$/i;

/** Every file entry in a ComfyUI history record's outputs, with its node id. */
export function outputFiles(record) {
  const files = [];
  for (const [node, output] of Object.entries((record && record.outputs) || {})) {
    for (const [kind, list] of Object.entries(output || {})) {
      if (!Array.isArray(list)) continue;
      for (const item of list) {
        if (item && typeof item === "object" && item.filename && item.url) files.push({ node, kind, ...item });
      }
    }
  }
  return files;
}

function thumb(file) {
  const url = withToken(file.url);
  const label = `${file.filename} (${t("node")} ${file.node})`;
  let media;
  if (VIDEO.test(file.filename)) {
    media = h("video", { src: url, muted: true, controls: true, preload: "metadata", "aria-label": label });
  } else if (IMAGE.test(file.filename)) {
    media = h("img", { src: url, alt: label, loading: "lazy", decoding: "async" });
  } else {
    media = h("span.file-icon", {}, file.filename.split(".").pop().toUpperCase());
  }
  return h("figure.thumb", {}, h("a", { href: url, target: "_blank", rel: "noopener", title: label }, media),
    h("figcaption", {}, file.filename));
}

/** Fill `container` with the outputs of prompt `promptId` (fetches /api/history/{id}). */
export async function showOutputs(container, promptId) {
  setChildren(container, h("span.muted", {}, t("loading")));
  try {
    const history = await api.history(promptId);
    const files = outputFiles(history && history[promptId]);
    setChildren(container, files.length ? h("div.thumbs", {}, files.map(thumb)) : h("span.muted", {}, t("no_outputs")));
    return files;
  } catch (error) {
    setChildren(container, h("span.error-text", {}, t("outputs_failed")));
    return [];
  }
}
