// The Review tab: the task's review queue (`GET task/{id}/review/`, the images the model was least
// sure about first), one image at a time. A person picks the right label and the image becomes
// training data (`POST task/{id}/review/{image}/`); the next training learns from it.
//
// Keyboard: 1–9 picks a label (a category task: at once; a tag task: toggles the tag), 0 picks
// "none of the tags", Enter confirms the selection (at first: the model's suggestion), X skips.

import { get, post } from "../api.js";
import { formatPercent, h, plural, replace } from "../lib/dom.js";
import { announce, emptyState, errorBox, loading, meter } from "../lib/ui.js";
import { negativeLabel, taskShell, userLabels } from "./task-common.js";

const PAGE_SIZE = 20; // decided images leave the queue, so the first page is always the next one
const UP_NEXT = 5;

export async function renderTaskReview(container, { taskId }, scope) {
  const shell = await taskShell(container, taskId, "review");
  if (!shell) return;
  const { task, panel } = shell;
  const tags = task.type === "multi_label";
  const options = userLabels(task);
  const negative = tags ? negativeLabel(task) : null;

  const summary = h("p", { class: "review-summary", "aria-live": "polite" });
  const problem = h("div", { "aria-live": "assertive" });
  const stage = h("div", { class: "review-stage" });
  const upNext = h("ol", { class: "review-next", "aria-label": "Up next" });
  panel.append(
    h(
      "section",
      { class: "panel", "aria-labelledby": "review-heading" },
      h("div", { class: "panel-heading" }, h("h2", { id: "review-heading" }, "Review"), summary),
      h(
        "p",
        { class: "hint" },
        "The images classify kept (store_images) that the model was least sure about come first, then unlabelled images it never saw. ",
        "Keys: ",
        h("kbd", {}, "1"),
        "–",
        h("kbd", {}, "9"),
        tags ? " toggle a tag, " : " pick a label, ",
        tags && negative ? [h("kbd", {}, "0"), " none of the tags, "] : null,
        h("kbd", {}, "Enter"),
        tags ? " confirms the selection, " : " confirms the suggestion, ",
        h("kbd", {}, "X"),
        " skips.",
      ),
      problem,
      stage,
      h("h3", { class: "hint" }, "Up next"),
      upNext,
    ),
  );

  let queue = []; // the loaded page, current image first
  let total = 0;
  let selected = new Set();
  let sending = false;

  async function loadQueue() {
    replace(stage, loading());
    try {
      const page = await get(`task/${task.id}/review/`, { page_size: PAGE_SIZE });
      if (scope.signal.aborted) return;
      queue = page.results;
      total = page.count;
      drawCurrent();
      drawSummary();
    } catch (error) {
      replace(stage, errorBox(error, "load the review queue"));
    }
  }

  async function drawSummary() {
    try {
      const found = await get(`task/${task.id}/review/summary/`);
      if (scope.signal.aborted) return;
      const since =
        found.last_version === null
          ? `${plural(found.reviewed, "image")} reviewed`
          : `${plural(found.reviewed_since_last_version, "image")} reviewed since version ${found.last_version}`;
      replace(summary, `${plural(total, "image")} to review · ${since}`);
    } catch {
      replace(summary, `${plural(total, "image")} to review`);
    }
  }

  function drawCurrent() {
    const item = queue[0];
    if (!item) {
      replace(
        stage,
        emptyState(
          "Nothing to review.",
          "Classify with store_images (or upload images without labels) and the images the model is least sure about appear here.",
          h("a", { class: "button", href: `#/tasks/${task.id}/train` }, "Go to Train"),
        ),
      );
      replace(upNext);
      return;
    }
    selected = new Set(item.suggestion);
    const image = h("img", { class: "review-image", src: item.image.img_path, alt: `Image ${item.image.id} to review` });
    const probs = new Map((item.prediction?.labels || []).map((label) => [label.id, label.prob]));
    const buttons = options.map((label, index) => optionButton(label, index < 9 ? String(index + 1) : "", probs.get(label.id)));
    if (negative) buttons.push(optionButton({ ...negative, name: "None of the tags" }, "0", undefined));
    const confirm = h("button", { type: "button", class: "primary", dataset: { role: "review-confirm" } }, "Confirm ", h("kbd", {}, "Enter"));
    confirm.addEventListener("click", confirmSelection);
    const skip = h("button", { type: "button", dataset: { role: "review-skip" } }, "Skip ", h("kbd", {}, "X"));
    skip.addEventListener("click", skipCurrent);
    replace(
      stage,
      h(
        "article",
        { class: "review-card", "aria-label": "The image to review" },
        image,
        h(
          "div",
          { class: "review-side" },
          item.prediction
            ? h(
                "p",
                { class: "review-model" },
                `Version ${item.prediction.version} was unsure: `,
                h("strong", {}, tags ? "closest to a threshold by " : "margin ", item.uncertainty.toFixed(3)),
              )
            : h("p", { class: "review-model hint" }, "No prediction: the model never classified this image."),
          h("ul", { class: "review-options", "aria-label": tags ? "Tags (toggle)" : "Labels" }, buttons.map((b) => h("li", {}, b))),
          h("div", { class: "actions" }, confirm, skip),
        ),
      ),
    );
    drawSelection();
    replace(
      upNext,
      queue.slice(1, 1 + UP_NEXT).map((next) => h("li", {}, h("img", { src: next.image.thumb_img_path, alt: `Image ${next.image.id}` }))),
    );
  }

  function optionButton(label, key, prob) {
    const button = h(
      "button",
      { type: "button", class: "review-option", dataset: { labelId: label.id }, "aria-pressed": "false" },
      key ? h("kbd", {}, key) : null,
      h("span", { class: "review-option-name" }, label.name),
      prob === undefined ? null : meter(prob, `${label.name}: probability`, { text: formatPercent(prob) }),
    );
    button.addEventListener("click", () => pick(label.id));
    return button;
  }

  function drawSelection() {
    for (const button of stage.querySelectorAll(".review-option")) {
      const on = selected.has(button.dataset.labelId);
      button.setAttribute("aria-pressed", String(on));
      button.classList.toggle("selected", on);
    }
  }

  function pick(labelId) {
    if (!queue.length || sending) return;
    if (!tags) {
      decide({ label_ids: [labelId] });
      return;
    }
    if (negative && labelId === negative.id) selected = new Set([labelId]);
    else {
      if (negative) selected.delete(negative.id);
      if (selected.has(labelId)) selected.delete(labelId);
      else selected.add(labelId);
    }
    drawSelection();
  }

  function confirmSelection() {
    if (!queue.length || sending) return;
    if (!selected.size) {
      replace(problem, errorBox({ detail: tags ? "Pick at least one tag (or 0: none of the tags)." : "Pick a label (1–9)." }, "confirm"));
      return;
    }
    decide({ label_ids: [...selected] });
  }

  function skipCurrent() {
    if (!queue.length || sending) return;
    decide({ skip: true });
  }

  async function decide(body) {
    const item = queue[0];
    sending = true;
    replace(problem);
    try {
      const done = await post(`task/${task.id}/review/${item.image.id}/`, body);
      if (scope.signal.aborted) return;
      const names = done.label_ids.map((id) => task.labels.find((label) => label.id === id)?.name || id);
      announce(done.status === "skipped" ? "Skipped." : `Labelled ${names.join(", ")}.`);
      queue.shift();
      total = Math.max(0, total - 1);
      if (!queue.length && total > 0) await loadQueue();
      else {
        drawCurrent();
        drawSummary();
      }
    } catch (error) {
      replace(problem, errorBox(error, "save the review"));
    } finally {
      sending = false;
    }
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
    if (document.querySelector("dialog[open]")) return;
    const key = event.key;
    if (/^[1-9]$/.test(key) && options[Number(key) - 1]) pick(options[Number(key) - 1].id);
    else if (key === "0" && negative) pick(negative.id);
    else if (key === "Enter" && !(target instanceof HTMLButtonElement || target instanceof HTMLAnchorElement)) confirmSelection();
    else if (key === "x" || key === "X") skipCurrent();
    else return;
    event.preventDefault();
  }
  document.addEventListener("keydown", onKey);
  scope.signal.addEventListener("abort", () => document.removeEventListener("keydown", onKey));

  await loadQueue();
}
