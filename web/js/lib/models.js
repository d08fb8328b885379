// Model versions: fetching a task's versions and showing their state.

import { listAll } from "../api.js";
import { h } from "./dom.js";

/** Every version of a task, newest first (the API lists newest first; sorted to be sure). */
export async function taskModels(taskId) {
  const models = await listAll("model/", { task: taskId });
  return models.sort((a, b) => b.version - a.version);
}

/** A coloured badge for Waiting / Training / Trained / Failed. */
export function stateBadge(status) {
  return h("span", { class: `state-badge ${String(status || "").toLowerCase()}` }, status || "unknown");
}

/** The name of a label id, from the model card first (labels may have been renamed or deleted since). */
export function labelNamer(model, task) {
  const names = new Map();
  for (const label of task?.labels || []) names.set(label.id, label.name);
  for (const label of model?.metrics?.labels || []) names.set(label.id, label.name);
  return (id) => names.get(id) || `label ${String(id).slice(0, 8)}`;
}
