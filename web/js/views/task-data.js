// The task's Data tab: its labels (with counts toward training) next to the upload panel.
// Counts follow the uploads as they land, without reloading the page.

import { get } from "../api.js";
import { h } from "../lib/dom.js";
import { errorBox, toast } from "../lib/ui.js";
import { labelsPanel } from "./labels-panel.js";
import { taskShell } from "./task-common.js";
import { uploadPanel } from "./upload-panel.js";

const REFRESH_MS = 700; // at most this often while uploads land

export async function renderTaskData(container, { taskId }, scope) {
  const shell = await taskShell(container, taskId, "data");
  if (!shell) return;
  let task = shell.task;

  /** Load the task again (new counts, labels) and redraw both panels. */
  async function refresh() {
    if (scope.signal.aborted) return;
    try {
      task = await get(`task/${task.id}/`);
    } catch (error) {
      toast(errorBox(error, "refresh the labels"), "error");
      return;
    }
    if (scope.signal.aborted) return;
    labels.update(task);
    upload.update(task);
    shell.updateMeta(task);
  }

  // Many uploads finish close together: one refresh for each burst.
  let timer = null;
  function refreshSoon() {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      refresh();
    }, REFRESH_MS);
  }
  scope.signal.addEventListener("abort", () => clearTimeout(timer));

  const labels = labelsPanel(task, refresh);
  const upload = uploadPanel(task, { uploaded: refreshSoon, changed: refresh, signal: scope.signal });
  shell.panel.append(
    h("div", { class: "columns" }, labels.element, upload.element),
    h(
      "p",
      { class: "hint next-step" },
      "When every label has enough images, go to ",
      h("a", { href: `#/tasks/${task.id}/train` }, "Train"),
      ".",
    ),
  );
}
