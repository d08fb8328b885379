// The Train tab: what is still missing (the API's rules, mirrored), the Train button, and the
// live state of the newest version (WAITING -> IN_TRAINING -> TRAINED | FAILED), polled from
// `model/?task=ID` without reloading the page.

import { get, post } from "../api.js";
import { formatDate, formatDuration, formatPercent, h, plural, replace, uid } from "../lib/dom.js";
import { STATUS, stateBadge, stateClass, taskModels } from "../lib/models.js";
import { isRunning, poll } from "../lib/poll.js";
import { announce, errorBox, loading } from "../lib/ui.js";
import { MIN_IMAGES_PER_LABEL, MIN_LABELS, taskShell, trainingBlockers, userLabels } from "./task-common.js";

const POLL_MS = 1500;
const STEPS = [STATUS.WAITING, STATUS.TRAINING, STATUS.TRAINED];

export async function renderTaskTrain(container, { taskId }, scope) {
  const shell = await taskShell(container, taskId, "train");
  if (!shell) return;
  let task = shell.task;
  const readiness = h("div");
  const reviewed = h("p", { class: "reviewed-gain", dataset: { role: "reviewed-gain" } });
  const problem = h("div", { "aria-live": "polite" });
  const live = h("div", { class: "live-version", "aria-live": "polite" });
  shell.panel.append(
    h("section", { class: "panel", "aria-labelledby": "train-heading" }, h("h2", { id: "train-heading" }, "Train a new version"), readiness, reviewed, problem),
    h("section", { class: "panel", "aria-labelledby": "live-heading" }, h("h2", { id: "live-heading" }, "Latest version"), live),
  );

  let lastState = null;

  function drawReadiness() {
    const blockers = trainingBlockers(task);
    const listId = uid("missing");
    const button = h(
      "button",
      { type: "button", class: "primary large", disabled: blockers.length > 0, "aria-describedby": listId },
      "Train",
    );
    button.addEventListener("click", () => train(button));
    const labels = userLabels(task);
    replace(
      readiness,
      blockers.length
        ? h(
            "div",
            { class: "notice warning", id: listId },
            h("strong", {}, "Not ready to train yet. Still missing:"),
            h("ul", { class: "missing" }, blockers.map((text) => h("li", {}, text))),
          )
        : h(
            "p",
            { class: "notice ok", id: listId },
            `Ready: ${labels.length} labels, each with at least ${MIN_IMAGES_PER_LABEL} images. `,
            "Training splits the images 80/20, learns from the first part and measures accuracy on the rest.",
          ),
      h("div", { class: "actions" }, button),
      h(
        "p",
        { class: "hint" },
        `Rules: at least ${MIN_LABELS} labels and ${MIN_IMAGES_PER_LABEL} images per label. `,
        "You get an email when training starts and ends; this page follows it live.",
      ),
    );
  }

  async function train(button) {
    replace(problem);
    button.disabled = true;
    try {
      const model = await post(`task/${task.id}/train/`);
      announce(`Version ${model.version} is waiting to be trained.`);
      drawLive(model);
      drawReviewed();
      follow();
    } catch (error) {
      // The API's own words (it names every label that is short).
      replace(problem, errorBox(error, "start training"));
    } finally {
      button.disabled = trainingBlockers(task).length > 0;
    }
  }

  /** The newest version as a stepper: WAITING -> IN_TRAINING -> TRAINED (or FAILED). */
  function drawLive(model) {
    if (!model) {
      replace(live, h("p", { class: "empty-title" }, "No version trained yet."));
      return;
    }
    if (lastState && lastState !== `${model.id}:${model.train_status}`) {
      announce(`Version ${model.version}: ${model.train_status}.`);
    }
    lastState = `${model.id}:${model.train_status}`;
    const failed = model.train_status === STATUS.FAILED;
    const reached = failed ? 2 : STEPS.indexOf(model.train_status);
    const steps = h(
      "ol",
      { class: "stepper", "aria-label": `State of version ${model.version}` },
      STEPS.map((step, index) => {
        const name = index === 2 && failed ? STATUS.FAILED : step;
        const status = index < reached ? "done" : index === reached ? "current" : "todo";
        return h(
          "li",
          { class: `${status} ${stateClass(name)}`, "aria-current": status === "current" ? "step" : null },
          name,
        );
      }),
    );
    const details = [];
    if (model.train_status === STATUS.TRAINED) {
      details.push(
        h("p", { class: "big-number" }, formatPercent(model.accuracy), h("span", { class: "hint" }, " accuracy on its test images")),
        h(
          "p",
          {},
          `Trained ${formatDate(model.trained)} in ${formatDuration(model.started, model.trained)}. `,
          h("a", { href: `#/tasks/${task.id}/models/${model.id}` }, "See the evaluation"),
          " · ",
          h("a", { href: `#/tasks/${task.id}/models` }, "All versions"),
        ),
      );
    } else if (failed) {
      details.push(errorBox({ detail: model.failure_reason || "no reason given" }, `train version ${model.version}`));
    } else {
      details.push(
        h(
          "p",
          { class: "hint" },
          model.train_status === STATUS.TRAINING ? `Training since ${formatDate(model.started)}…` : "Waiting for a trainer…",
        ),
      );
    }
    replace(
      live,
      h("p", {}, h("strong", {}, `Version ${model.version}`), " ", stateBadge(model.train_status)),
      steps,
      details,
    );
  }

  /** Poll the versions until the newest one has finished; then refresh the task's header. */
  function follow() {
    poll(
      async () => {
        const [latest] = await taskModels(task.id);
        if (scope.signal.aborted) return false;
        drawLive(latest);
        if (isRunning(latest)) return true;
        task = await get(`task/${task.id}/`);
        shell.updateMeta(task);
        return false;
      },
      POLL_MS,
      scope.signal,
      (error) => replace(problem, errorBox(error, "follow the training")),
    );
  }

  /** What the Review tab added: reviewed images the next version learns from that the last did not. */
  async function drawReviewed() {
    try {
      const found = await get(`task/${task.id}/review/summary/`);
      if (scope.signal.aborted) return;
      const gained = found.reviewed_since_last_version;
      const since = found.last_version === null ? "" : ` since version ${found.last_version}`;
      replace(
        reviewed,
        gained
          ? `The next version gains ${plural(gained, "reviewed image")}${since}. `
          : `No reviewed images${since} yet. `,
        found.queued ? h("a", { href: `#/tasks/${task.id}/review` }, `${plural(found.queued, "image")} wait for review`) : null,
      );
    } catch {
      replace(reviewed); // the count is a help, not a condition of training
    }
  }

  drawReadiness();
  drawReviewed();
  replace(live, loading());
  try {
    const [latest] = await taskModels(task.id);
    drawLive(latest);
    if (isRunning(latest)) follow();
  } catch (error) {
    replace(live, errorBox(error, "load the versions"));
  }
}
