// Model versions: fetching a task's versions and showing their state.

import { listAll } from "../api.js";
import { h } from "./dom.js";

/** Every version of a task, newest first (the API lists newest first; sorted to be sure). */
export async function taskModels(taskId) {
  const models = await listAll("model/", { task: taskId });
  return models.sort((a, b) => b.version - a.version);
}

/** A version's states, spelt as Ximilar spells them (the API's train_status / last_train_status). */
export const STATUS = Object.freeze({
  WAITING: "WAITING",
  TRAINING: "IN_TRAINING",
  TRAINED: "TRAINED",
  FAILED: "FAILED",
});

/** The CSS class of a state: waiting, training, trained or failed. */
export function stateClass(status) {
  const text = String(status || "").toLowerCase();
  return text === "in_training" ? "training" : text;
}

/** A coloured badge for WAITING / IN_TRAINING / TRAINED / FAILED. */
export function stateBadge(status) {
  return h("span", { class: `state-badge ${stateClass(status)}` }, status || "unknown");
}

/** The name of a label id, from the model card first (labels may have been renamed or deleted since). */
export function labelNamer(model, task) {
  const names = new Map();
  for (const label of task?.labels || []) names.set(label.id, label.name);
  for (const label of model?.metrics?.labels || []) names.set(label.id, label.name);
  return (id) => names.get(id) || `label ${String(id).slice(0, 8)}`;
}
