// The Classify tab: drop, choose or paste images, or give a URL; `POST classify/` in batches of
// up to 10 records; each result shows its labels with probability bars (and `best_labels`, the
// tags over their thresholds, for multi_label tasks), or its own `_status` error, and under it
// the most similar training images (`POST task/{id}/similar/`, the same version).

import { post } from "../api.js";
import { formatPercent, h, plural, replace, uid } from "../lib/dom.js";
import { filesFromDrop, filesFromInput } from "../lib/files.js";
import { STATUS, taskModels } from "../lib/models.js";
import { announce, emptyState, errorBox, loading, meter } from "../lib/ui.js";
import { similarPlaceholder, similarUnderResults } from "./similar-images.js";
import { taskShell } from "./task-common.js";

const RECORDS_PER_CALL = 10; // the API's limit
const BYTES_PER_CALL = 4 * 1024 * 1024; // base64 text per call, well under the 6 MB request cap

export async function renderTaskClassify(container, { taskId }, scope) {
  const shell = await taskShell(container, taskId, "classify");
  if (!shell) return;
  const { task, panel } = shell;
  panel.append(loading());
  let models;
  try {
    models = (await taskModels(task.id)).filter((m) => m.train_status === STATUS.TRAINED);
  } catch (error) {
    replace(panel, errorBox(error, "load the versions"));
    return;
  }
  if (!models.length) {
    replace(
      panel,
      emptyState(
        "Nothing to classify with yet.",
        "Train a version first; it is used here as soon as it is trained.",
        h("a", { class: "button", href: `#/tasks/${task.id}/train` }, "Go to Train"),
      ),
    );
    return;
  }

  // --- the inputs ----------------------------------------------------------------------------
  const versionId = uid("version");
  const version = h(
    "select",
    { id: versionId },
    task.production_version > 0 ? h("option", { value: "" }, `Production (version ${task.production_version})`) : null,
    models.map((m) => h("option", { value: String(m.version) }, `Version ${m.version} (${formatPercent(m.accuracy)} accuracy)`)),
  );
  const fileInput = h("input", { type: "file", multiple: true, accept: "image/*", class: "visually-hidden", "aria-label": "Choose images to classify" });
  const choose = h("button", { type: "button" }, "Choose images…");
  choose.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    classifyFiles(filesFromInput(fileInput).map((f) => f.file));
    fileInput.value = "";
  });

  const zone = h(
    "div",
    { class: "dropzone", dataset: { role: "classify-drop" } },
    h("p", { class: "dropzone-title" }, "Drop images here, or paste one (Ctrl+V)"),
    h("p", { class: "hint" }, "Images dragged from another web page are classified by their URL."),
    h("div", { class: "actions" }, choose),
    fileInput,
  );
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const url = event.dataTransfer.getData("text/uri-list") || event.dataTransfer.getData("text/plain");
    const files = (await filesFromDrop(event.dataTransfer)).map((f) => f.file);
    if (files.length) classifyFiles(files);
    else if (/^https?:\/\//.test(url.trim())) classifyUrl(url.trim().split("\n")[0]);
  });

  // Paste anywhere on this screen: an image from the clipboard, or a URL.
  function onPaste(event) {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
    const files = [...(event.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
    const text = event.clipboardData?.getData("text/plain")?.trim() || "";
    if (files.length) classifyFiles(files);
    else if (/^https?:\/\//.test(text)) classifyUrl(text);
    else return;
    event.preventDefault();
  }
  document.addEventListener("paste", onPaste);
  scope.signal.addEventListener("abort", () => document.removeEventListener("paste", onPaste));

  const urlId = uid("url");
  const urlInput = h("input", { id: urlId, type: "url", placeholder: "https://example.com/photo.jpg", autocomplete: "off" });
  const urlForm = h(
    "form",
    { class: "inline-form", "aria-label": "Classify an image URL" },
    h("label", { for: urlId }, "Image URL"),
    urlInput,
    h("button", { type: "submit" }, "Classify URL"),
  );
  urlForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (urlInput.value.trim()) classifyUrl(urlInput.value.trim());
  });

  const keepId = uid("keep");
  const keep = h("input", { id: keepId, type: "checkbox" });
  const keepField = h(
    "div",
    { class: "field check" },
    keep,
    h("label", { for: keepId }, "Keep the images for review (store_images): the unsure ones come first on the Review tab"),
  );
  const problem = h("div", { "aria-live": "polite" });
  const results = h("ol", { class: "results", "aria-label": "Results, newest first" });
  const clear = h("button", { type: "button", class: "small" }, "Clear results");
  clear.addEventListener("click", () => replace(results));

  replace(
    panel,
    h(
      "section",
      { class: "panel", "aria-labelledby": "classify-heading" },
      h("h2", { id: "classify-heading" }, "Try the model"),
      h("div", { class: "field" }, h("label", { for: versionId }, "Version"), version),
      zone,
      urlForm,
      keepField,
      problem,
    ),
    h(
      "section",
      { class: "panel", "aria-labelledby": "results-heading" },
      h("div", { class: "panel-heading" }, h("h2", { id: "results-heading" }, "Results"), clear),
      results,
    ),
  );

  // --- classifying ---------------------------------------------------------------------------

  /** Send records ([{record, name, preview}]) in calls of at most 10 and ~4 MB; show each answer. */
  async function classify(items) {
    replace(problem);
    const batches = [];
    let batch = [];
    let bytes = 0;
    for (const item of items) {
      const size = (item.record._base64 || "").length;
      if (batch.length && (batch.length >= RECORDS_PER_CALL || bytes + size > BYTES_PER_CALL)) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(item);
      bytes += size;
    }
    if (batch.length) batches.push(batch);

    for (const group of batches) {
      const pending = group.map((item) => {
        const card = resultCard(item);
        results.prepend(card.element);
        return card;
      });
      const body = { task_id: task.id, records: group.map((item) => item.record) };
      if (version.value) body.version = Number(version.value);
      if (keep.checked) body.store_images = true;
      let answer;
      try {
        answer = await post("classify/", body);
        answer.records.forEach((record, i) => pending[i].show(record, answer));
        announce(`${plural(answer.records.length, "image")} classified.`);
      } catch (error) {
        for (const card of pending) card.element.remove();
        replace(problem, errorBox(error, "classify"));
        continue;
      }
      // One similar/ call for the batch's classified records, with the version that answered.
      const classified = answer.records.map((record, i) => ({ record, i })).filter(({ record }) => (record._status?.code ?? 200) < 300);
      if (classified.length) {
        similarUnderResults(
          task.id,
          classified.map(({ i }) => group[i].record),
          classified.map(({ i }) => pending[i].similarHolder),
          answer.version,
        );
      }
    }
  }

  async function classifyFiles(files) {
    const items = await Promise.all(
      files.map(async (file) => ({
        name: file.name || "pasted image",
        preview: URL.createObjectURL(file),
        record: { _base64: await base64Of(file) },
      })),
    );
    classify(items);
  }

  function classifyUrl(url) {
    classify([{ name: url, preview: url, record: { _url: url } }]);
  }

  function resultCard(item) {
    const body = h("div", { class: "result-body" }, loading("Classifying…"));
    const similarHolder = similarPlaceholder(); // filled by the batch's similar/ call
    const element = h(
      "li",
      { class: "result" },
      preview(item),
      h("div", {}, h("p", { class: "result-name" }, item.name), body),
    );
    return {
      element,
      show(record, answer) {
        const status = record._status || { code: 200, text: "OK" };
        if (status.code >= 300) {
          replace(body, errorBox({ status: status.code, detail: status.text }, "classify this image"));
          return;
        }
        replace(body, prediction(record, answer), similarHolder);
      },
      similarHolder,
    };
  }
}

/** The image as the browser sees it; a URL it cannot show gets a placeholder (the API may still). */
function preview(item) {
  const image = h("img", { class: "result-image", src: item.preview, alt: `The image ${item.name}` });
  image.addEventListener("error", () => image.replaceWith(h("div", { class: "result-image no-preview" }, "no preview")));
  return image;
}

/** Best label(s) and a bar for every label, most likely first. */
function prediction(record, answer) {
  const labels = [...(record.labels || [])].sort((a, b) => b.prob - a.prob);
  const best = record.best_label;
  const tags = record.best_labels;
  return h(
    "div",
    { class: "prediction" },
    tags
      ? h(
          "p",
          { class: "best" },
          h("span", { class: "hint" }, "Tags: "),
          tags.length ? tags.map((t) => h("span", { class: "chip strong" }, t.name)) : "none over its threshold",
        )
      : best
        ? h("p", { class: "best" }, h("strong", { class: "best-label" }, best.name), ` ${formatPercent(best.prob)}`)
        : null,
    h(
      "ul",
      { class: "bars", "aria-label": "Probability of each label" },
      labels.map((label) =>
        h(
          "li",
          {},
          h("span", { class: "bar-name" }, label.name),
          meter(label.prob, `${label.name}: probability`, {
            text: formatPercent(label.prob),
            kind: best && label.id === best.id ? "ok" : "",
          }),
        ),
      ),
    ),
    h("p", { class: "hint" }, `Version ${answer.version}`),
  );
}

/** The file's bytes as base64 (without the data: prefix). */
function base64Of(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener("load", () => resolve(String(reader.result).replace(/^data:[^,]*,/, "")));
    reader.addEventListener("error", () => reject(reader.error));
    reader.readAsDataURL(file);
  });
}
