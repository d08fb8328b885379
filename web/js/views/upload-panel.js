// Uploading training images: drop files or a folder (or choose them), pick the label (or "one
// sub-folder per label"), and follow each file: progress, uploaded, duplicate, or refused
// with the API's reason.

import { formatBytes, h, plural, replace, uid } from "../lib/dom.js";
import { filesFromDrop, filesFromInput, folderOf, isHidden } from "../lib/files.js";
import { queueFor } from "../lib/uploads.js";
import { announce, errorBox, meter } from "../lib/ui.js";
import { createAndAttach } from "./labels-panel.js";
import { negativeLabel, userLabels } from "./task-common.js";

const BY_FOLDER = "by-folder";
const STATE_TEXT = { queued: "waiting", uploading: "uploading", done: "uploaded", duplicate: "duplicate", failed: "refused" };

/**
 * @param {object} task         the task JSON
 * @param {object} options
 * @param {Function} options.uploaded  called (often) while images arrive: refresh the counts
 * @param {Function} options.changed   called after labels were created for folders
 * @param {AbortSignal} options.signal aborted when the screen goes away
 */
export function uploadPanel(task, { uploaded, changed, signal }) {
  const queue = queueFor(task.id);
  const targetId = uid("target");
  const target = h("select", { id: targetId, name: "target" });
  const problem = h("div", { class: "form-problem" });
  const summary = h("p", { class: "upload-summary", "aria-live": "polite" });
  const list = h("ul", { class: "upload-list", "aria-label": "Uploads" });
  const clear = h("button", { type: "button", class: "small", hidden: true }, "Clear finished");
  const rows = new Map(); // item id -> row parts

  const fileInput = h("input", {
    type: "file",
    multiple: true,
    accept: "image/*",
    class: "visually-hidden",
    id: uid("files"),
    "aria-label": "Choose image files",
    dataset: { role: "file-input" },
  });
  const folderInput = h("input", {
    type: "file",
    multiple: true,
    webkitdirectory: true,
    class: "visually-hidden",
    id: uid("folder"),
    "aria-label": "Choose a folder",
  });
  const chooseFiles = h("button", { type: "button" }, "Choose files…");
  const chooseFolder = h("button", { type: "button" }, "Choose a folder…");
  chooseFiles.addEventListener("click", () => fileInput.click());
  chooseFolder.addEventListener("click", () => folderInput.click());
  for (const input of [fileInput, folderInput]) {
    input.addEventListener("change", () => {
      enqueue(filesFromInput(input));
      input.value = ""; // choosing the same files again fires "change" again
    });
  }

  const zone = h(
    "div",
    { class: "dropzone", dataset: { role: "dropzone" } },
    h("p", { class: "dropzone-title" }, "Drop images or a folder here"),
    h("p", { class: "hint" }, "JPEG, PNG, WebP, GIF, BMP or TIFF; up to 10 MB each."),
    h("div", { class: "actions" }, chooseFiles, chooseFolder),
    fileInput,
    folderInput,
  );
  zone.addEventListener("dragover", (event) => {
    event.preventDefault(); // allows the drop
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    enqueue(await filesFromDrop(event.dataTransfer));
  });

  clear.addEventListener("click", () => queue.clearFinished());

  const element = h(
    "section",
    { class: "panel", "aria-labelledby": "upload-heading" },
    h("h2", { id: "upload-heading" }, "Upload images"),
    h("div", { class: "field" }, h("label", { for: targetId }, "Put the images in"), target),
    h("p", { class: "hint" }, "A dropped folder with one sub-folder per label fits “Labels named after their folders”: new names become new labels."),
    zone,
    problem,
    h("div", { class: "upload-status" }, summary, clear),
    list,
  );

  /** The target choices: each label, the negative one, or "by folder name". */
  function drawTargets() {
    const chosen = target.value;
    const negative = negativeLabel(task);
    replace(
      target,
      userLabels(task).map((label) => h("option", { value: label.id }, `Label “${label.name}”`)),
      negative ? h("option", { value: negative.id }, "Negative (none of the tags)") : null,
      h("option", { value: BY_FOLDER }, "Labels named after their folders"),
    );
    if ([...target.options].some((option) => option.value === chosen)) target.value = chosen;
  }

  /** Work out each file's label, creating labels for new folder names, then queue them. */
  async function enqueue(found) {
    replace(problem);
    const files = found.filter(({ path }) => !isHidden(path));
    if (!files.length) return;
    if (target.value !== BY_FOLDER) {
      const label = task.labels.find((l) => l.id === target.value);
      if (!label) {
        replace(problem, errorBox(new Error("Create a label first, or choose “Labels named after the folders”."), "upload"));
        return;
      }
      queue.add(files.map(({ file, path }) => ({ file, path, labelIds: [label.id], labelName: label.name })));
      return;
    }
    const byName = new Map(task.labels.map((label) => [label.name.toLowerCase(), label]));
    const entries = [];
    try {
      for (const { file, path } of files) {
        const folder = folderOf(path);
        if (!folder) {
          entries.push({ file, path, labelIds: [], labelName: "—", error: "not in a sub-folder: choose its label in “Put the images in”" });
          continue;
        }
        let label = byName.get(folder.toLowerCase());
        if (!label) {
          label = await createAndAttach(task, folder);
          byName.set(folder.toLowerCase(), label);
        }
        entries.push({ file, path, labelIds: [label.id], labelName: label.name });
      }
    } catch (error) {
      replace(problem, errorBox(error, "create the labels for the folders"));
    }
    if (entries.length) queue.add(entries);
    await changed();
  }

  // --- the list of uploads -----------------------------------------------------------------

  function itemRow(item) {
    const state = h("span", { class: "upload-state" });
    const detail = h("span", { class: "upload-detail" });
    const row = h(
      "li",
      { class: "upload-item" },
      h(
        "div",
        { class: "upload-name" },
        h("span", { class: "file-name" }, item.path),
        h("span", { class: "hint" }, ` ${formatBytes(item.file.size)} → ${item.labelName}`),
      ),
      state,
      detail,
    );
    const parts = { row, state, detail };
    drawItem(item, parts);
    return parts;
  }

  function drawItem(item, { row, state, detail }) {
    row.dataset.state = item.state;
    if (item.state === "uploading") {
      replace(state, meter(item.progress, `Uploading ${item.path}`, { text: `${Math.round(item.progress * 100)}%` }));
    } else {
      replace(state, h("span", { class: `state-badge ${item.state}` }, STATE_TEXT[item.state]));
    }
    if (item.state === "duplicate" || item.state === "failed") {
      replace(detail, item.message); // the API's detail: the existing image's id, or why it was refused
    } else {
      replace(detail);
    }
  }

  function drawList() {
    rows.clear();
    replace(
      list,
      queue.items.map((item) => {
        const parts = itemRow(item);
        rows.set(item.id, parts);
        return parts.row;
      }),
    );
    drawSummary();
  }

  function drawSummary() {
    const c = queue.counts();
    const total = queue.items.length;
    if (!total) {
      replace(summary);
      clear.hidden = true;
      return;
    }
    const parts = [`${c.done} of ${plural(total, "file")} uploaded`];
    if (c.duplicate) parts.push(plural(c.duplicate, "duplicate"));
    if (c.failed) parts.push(`${c.failed} refused`);
    if (c.queued + c.uploading) parts.push(`${c.queued + c.uploading} to go`);
    replace(summary, parts.join(" · "));
    clear.hidden = c.done + c.duplicate + c.failed === 0;
  }

  const unsubscribe = queue.subscribe((kind, item) => {
    if (kind === "list") drawList();
    else if (kind === "item") {
      const parts = rows.get(item.id);
      if (parts) {
        drawItem(item, parts);
        // Problems go to the top of the list, where they are seen without scrolling.
        if (item.state === "failed" || item.state === "duplicate") list.prepend(parts.row);
      }
      drawSummary();
      if (item.state === "done") uploaded();
    } else if (kind === "idle") {
      const c = queue.counts();
      announce(`Uploads finished: ${c.done} uploaded, ${c.duplicate} duplicates, ${c.failed} refused.`);
      uploaded();
    }
  });
  signal.addEventListener("abort", unsubscribe);

  drawTargets();
  drawList();
  return {
    element,
    update(next) {
      task = next;
      drawTargets();
    },
  };
}
