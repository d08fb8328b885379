// What the task screens share: task types, the training rules (mirroring the API's), and the
// task header with its tabs.

import { get } from "../api.js";
import { h, plural, replace } from "../lib/dom.js";
import { errorBox, loading } from "../lib/ui.js";

export const TASK_TYPES = [
  { value: "multi_class", name: "Categories", help: "each image is exactly one label" },
  { value: "multi_label", name: "Tags", help: "each image has any number of labels" },
];

// The API's rules for training (kestrel/domain/training_rules.py); the API stays the judge.
export const MIN_LABELS = 2;
export const MIN_IMAGES_PER_LABEL = 20;

export function typeBadge(type) {
  const known = TASK_TYPES.find((t) => t.value === type);
  return h("span", { class: `badge ${type}`, title: known ? known.help : "" }, known ? known.name : type);
}

/** The automatic negative label of a multi_label task (images with none of its tags), if any. */
export function negativeLabel(task) {
  return task.labels.find((label) => label.negative_for_task === task.id) || null;
}

/** The labels a model learns: all but the negative one. */
export function userLabels(task) {
  return task.labels.filter((label) => label.negative_for_task !== task.id);
}

/** What stops `task` from being trained, in the API's words; empty when it may be trained. */
export function trainingBlockers(task) {
  const labels = userLabels(task);
  const problems = [];
  if (labels.length < MIN_LABELS) {
    problems.push(
      `The task has ${plural(labels.length, "label")}; it needs at least ${MIN_LABELS}. Create or attach labels on the Data tab.`,
    );
  }
  for (const label of labels) {
    if (label.images_count < MIN_IMAGES_PER_LABEL) {
      const missing = MIN_IMAGES_PER_LABEL - label.images_count;
      problems.push(
        `Label “${label.name}” has ${plural(label.images_count, "image")}: ${missing} more needed (at least ${MIN_IMAGES_PER_LABEL}).`,
      );
    }
  }
  return problems;
}

const TABS = [
  { id: "data", title: "Data", suffix: "" },
  { id: "train", title: "Train", suffix: "/train" },
  { id: "models", title: "Models", suffix: "/models" },
  { id: "classify", title: "Classify", suffix: "/classify" },
  { id: "review", title: "Review", suffix: "/review" },
  { id: "api", title: "API", suffix: "/api" },
];

/**
 * Draw the task header (name, type, production version) and tabs into `container`.
 * Resolves to {task, panel} (the panel is where the tab draws), or null when the task could
 * not be loaded (an error is shown instead).
 */
export async function taskShell(container, taskId, tab) {
  replace(container, loading());
  let task;
  try {
    task = await get(`task/${encodeURIComponent(taskId)}/`);
  } catch (error) {
    replace(
      container,
      h("h1", {}, "Task"),
      errorBox(error, "load this task"),
      h("p", {}, h("a", { href: "#/tasks" }, "← All tasks")),
    );
    return null;
  }
  const meta = h("p", { class: "task-meta" });
  const panel = h("section", { class: "tab-panel", "aria-label": TABS.find((t) => t.id === tab).title });
  replace(
    container,
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" }, h("a", { href: "#/tasks" }, "Tasks"), " / "),
    h("h1", {}, task.name),
    meta,
    h(
      "nav",
      { class: "tabs", "aria-label": "Task sections" },
      TABS.map((t) =>
        h("a", { href: `#/tasks/${task.id}${t.suffix}`, "aria-current": t.id === tab ? "page" : null }, t.title),
      ),
    ),
    panel,
  );
  const shell = { task, panel, updateMeta: (changed) => drawMeta(meta, changed) };
  drawMeta(meta, task);
  return shell;
}

function drawMeta(meta, task) {
  replace(
    meta,
    typeBadge(task.type),
    " ",
    task.production_version > 0
      ? h("span", { class: "badge production" }, `version ${task.production_version} in production`)
      : h("span", { class: "badge muted" }, "no version in production yet"),
    task.description ? h("span", { class: "description" }, ` ${task.description}`) : null,
  );
}
