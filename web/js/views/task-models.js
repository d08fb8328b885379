// The Models tab: every version with its state, accuracy, dates and duration; deploy one.
// Versions still training are followed live.

import { get, patch } from "../api.js";
import { formatDate, formatDuration, formatPercent, h, replace } from "../lib/dom.js";
import { STATUS, stateBadge, taskModels } from "../lib/models.js";
import { isRunning, poll } from "../lib/poll.js";
import { dataTable, emptyState, errorBox, loading, toast } from "../lib/ui.js";
import { taskShell } from "./task-common.js";

const POLL_MS = 2000;

/** Make `version` the one classify uses by default; resolves to the changed task. */
export async function deploy(task, version) {
  const changed = await patch(`task/${task.id}/`, { production_version: version });
  toast(`Version ${version} is now in production.`, "success");
  return changed;
}

/** A "Deploy" button, or the "in production" badge for the deployed version. */
export function deployControl(task, model, deployed) {
  if (task.production_version === model.version) return h("span", { class: "badge production" }, "in production");
  if (model.train_status !== STATUS.TRAINED) return null;
  const button = h(
    "button",
    { type: "button", class: "small", "aria-label": `Deploy version ${model.version}` },
    "Deploy",
  );
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      deployed(await deploy(task, model.version));
    } catch (error) {
      toast(errorBox(error, `deploy version ${model.version}`), "error");
      button.disabled = false;
    }
  });
  return button;
}

export async function renderTaskModels(container, { taskId }, scope) {
  const shell = await taskShell(container, taskId, "models");
  if (!shell) return;
  let task = shell.task;
  let models = [];
  const table = h("div", { "aria-live": "polite" });
  shell.panel.append(h("section", { class: "panel", "aria-labelledby": "versions-heading" }, h("h2", { id: "versions-heading" }, "Versions"), table));

  function deployed(changed) {
    task = changed;
    shell.updateMeta(task);
    draw();
  }

  function draw() {
    if (!models.length) {
      replace(
        table,
        emptyState(
          "No versions yet.",
          "Each training creates a new version here.",
          h("a", { class: "button", href: `#/tasks/${task.id}/train` }, "Go to Train"),
        ),
      );
      return;
    }
    replace(
      table,
      dataTable(
        [
          "Version",
          "State",
          "Accuracy",
          { label: "Created", class: "optional" },
          "Trained",
          "Duration",
          "Production",
          h("span", { class: "visually-hidden" }, "Evaluation"),
        ],
        models.map((model) =>
          h(
            "tr",
            { dataset: { version: String(model.version) } },
            h("th", { scope: "row" }, `v${model.version}`),
            h("td", {}, stateBadge(model.train_status)),
            h("td", { class: "number" }, formatPercent(model.accuracy)),
            h("td", { class: "optional" }, formatDate(model.created)),
            h("td", {}, formatDate(model.trained)),
            h("td", {}, formatDuration(model.started, model.trained)),
            h("td", {}, deployControl(task, model, deployed)),
            h(
              "td",
              {},
              model.train_status === STATUS.TRAINED || model.train_status === STATUS.FAILED
                ? h(
                    "a",
                    { href: `#/tasks/${task.id}/models/${model.id}`, "aria-label": `Evaluation of version ${model.version}` },
                    model.train_status === STATUS.TRAINED ? "Evaluation" : "Why it failed",
                  )
                : null,
            ),
          ),
        ),
      ),
    );
  }

  replace(table, loading());
  try {
    models = await taskModels(task.id);
  } catch (error) {
    replace(table, errorBox(error, "load the versions"));
    return;
  }
  draw();
  if (models.some(isRunning)) {
    poll(
      async () => {
        models = await taskModels(task.id);
        if (scope.signal.aborted) return false;
        if (models.some(isRunning)) {
          draw();
          return true;
        }
        task = await get(`task/${task.id}/`); // the first trained version goes to production
        shell.updateMeta(task);
        draw();
        return false;
      },
      POLL_MS,
      scope.signal,
    );
  }
}
