// The evaluation of one version, from its model card (`model/{id}` -> `metrics`): accuracy,
// per-label precision/recall/F1, the confusion matrix as a coloured grid, and the test images
// it got wrong, with what it took them for, and the training images that are possibly mislabelled
// (views/mislabelled.js). `metrics` is a bounded summary; when it says
// `truncated`, the full card is read from `model/{id}/card/`. Mails that could not be sent
// (`mail_status`) are shown too: they never change the training's result.

import { get } from "../api.js";
import { append, formatDate, formatDuration, formatPercent, h, plural, replace } from "../lib/dom.js";
import { STATUS, labelNamer, stateBadge } from "../lib/models.js";
import { isRunning, poll } from "../lib/poll.js";
import { dataTable, emptyState, errorBox, loading } from "../lib/ui.js";
import { mislabelledSection } from "./mislabelled.js";
import { taskShell } from "./task-common.js";
import { deployControl } from "./task-models.js";

const MAX_MISTAKES_SHOWN = 60;
const THUMB_FETCHES_AT_ONCE = 6;

export async function renderModelEvaluation(container, { taskId, modelId }, scope) {
  const shell = await taskShell(container, taskId, "models");
  if (!shell) return;
  let task = shell.task;
  const body = h("div", {}, loading());
  shell.panel.append(h("p", {}, h("a", { href: `#/tasks/${task.id}/models` }, "← All versions")), body);

  let model;
  try {
    model = await withFullCard(await get(`model/${encodeURIComponent(modelId)}/`));
  } catch (error) {
    replace(body, errorBox(error, "load this version"));
    return;
  }

  function draw() {
    const heading = h(
      "div",
      { class: "evaluation-heading" },
      h("h2", {}, `Version ${model.version}`),
      stateBadge(model.train_status),
      deployControl(task, model, (changed) => {
        task = changed;
        shell.updateMeta(task);
        draw();
      }),
    );
    const mail = mailNotes(model);
    if (model.train_status === STATUS.FAILED) {
      replace(body, heading, errorBox({ detail: model.failure_reason || "no reason given" }, `train version ${model.version}`), mail);
      return;
    }
    if (!model.metrics || model.train_status !== STATUS.TRAINED) {
      replace(body, heading, mail, emptyState(`Version ${model.version} is ${model.train_status}.`, "Its evaluation appears here when training ends."));
      return;
    }
    const name = labelNamer(model, task);
    const metrics = model.metrics;
    const multiLabel = metrics.task_type === "multi_label" || Boolean(metrics.thresholds);
    replace(
      body,
      heading,
      mail,
      summary(model, multiLabel),
      perLabelTable(metrics, name, multiLabel),
      multiLabel ? null : confusionMatrix(metrics.confusion_matrix, name),
      mistakes(metrics, name, multiLabel, scope.signal),
      mislabelledSection(model, task, name),
    );
  }

  draw();
  if (isRunning(model)) {
    poll(
      async () => {
        model = await get(`model/${model.id}/`);
        if (isRunning(model)) return true;
        model = await withFullCard(model);
        task = await get(`task/${task.id}/`);
        shell.updateMeta(task);
        draw();
        return false;
      },
      2000,
      scope.signal,
    );
  }
}

/** The model with its full card as `metrics` when the record keeps only a truncated summary. */
async function withFullCard(model) {
  if (model.train_status !== "TRAINED" || !model.metrics || !model.metrics.truncated) return model;
  const card = await get(`model/${encodeURIComponent(model.id)}/card/`);
  return { ...model, metrics: { ...card, misclassified_total: (card.misclassified || []).length, truncated: false } };
}

/** One line per mail about this version that was not sent, with the reason. */
function mailNotes(model) {
  const unsent = Object.entries(model.mail_status || {}).filter(([, status]) => status !== "sent");
  if (!unsent.length) return null;
  return h(
    "section",
    { class: "panel mail-status", "aria-label": "Mail" },
    unsent.map(([kind, status]) => h("p", { class: "hint" }, `The “training ${kind}” mail was ${status}`)),
  );
}

function stat(label, value, note = "") {
  return h("div", { class: "stat" }, h("dt", {}, label), h("dd", {}, value, note ? h("span", { class: "hint" }, ` ${note}`) : null));
}

/** "92 % (85–96 %)": a share and its 95 % interval, as whole percents. */
export function formatWithInterval(value, interval) {
  if (value === null || value === undefined) return "—";
  const whole = (x) => `${Math.round(Number(x) * 100)}`;
  const main = `${whole(value)} %`;
  return Array.isArray(interval) && interval.length === 2 ? `${main} (${whole(interval[0])}–${whole(interval[1])} %)` : main;
}

function summary(model, multiLabel) {
  const metrics = model.metrics;
  const counts = metrics.counts || {};
  const interval = model.accuracy_interval ?? metrics.accuracy_interval;
  const crossValidated = model.cross_validated_accuracy ?? metrics.cross_validated_accuracy;
  const cvInterval = model.cross_validated_accuracy_interval ?? metrics.cross_validated_accuracy_interval;
  const sentence = model.evaluation_summary ?? metrics.evaluation_summary;
  const folds = (metrics.cross_validation && metrics.cross_validation.folds) || 5;
  return h(
    "section",
    { class: "evaluation-summary" },
    h(
      "dl",
      { class: "stats" },
      stat("Accuracy", formatWithInterval(model.accuracy ?? metrics.accuracy, interval), multiLabel ? "(every tag right)" : ""),
      crossValidated !== null && crossValidated !== undefined
        ? stat("Cross-validated", formatWithInterval(crossValidated, cvInterval), `(${folds} folds, all images)`)
        : null,
      multiLabel ? stat("Micro F1", formatPercent(metrics.micro_f1)) : null,
      stat("Test images", String(counts.images_test ?? "—")),
      stat("Training images", String(counts.images_train ?? "—")),
      stat("Trained", formatDate(model.trained), `in ${formatDuration(model.started, model.trained)}`),
    ),
    interval
      ? h(
          "p",
          { class: "hint interval-explained" },
          "In brackets: the range the true accuracy lies in with 95 % confidence; the fewer the test images, the wider it is.",
        )
      : null,
    sentence ? h("p", { class: "evaluation-sentence" }, sentence.charAt(0).toUpperCase() + sentence.slice(1) + ".") : null,
  );
}

function perLabelTable(metrics, name, multiLabel) {
  const perLabel = metrics.per_label || {};
  const order = (metrics.labels || []).map((l) => l.id).filter((id) => id in perLabel);
  for (const id of Object.keys(perLabel)) if (!order.includes(id)) order.push(id);
  const thresholds = metrics.thresholds || [];
  const trainCounts = (metrics.counts && metrics.counts.train) || {};
  const foldRecall = (metrics.cross_validation && metrics.cross_validation.per_label_recall) || null;
  return h(
    "section",
    { class: "panel", "aria-labelledby": "per-label-heading" },
    h("h3", { id: "per-label-heading" }, "Per label"),
    dataTable(
      [
        "Label",
        "Precision",
        "Recall",
        "F1",
        { label: "Test images", title: "test images that carry the label" },
        { label: "Training images", class: "optional" },
        multiLabel ? "Threshold" : null,
        foldRecall ? { label: "Recall (cross-validated)", title: "recall over every image, each predicted by a model that never saw it" } : null,
      ],
      order.map((id) => {
        const m = perLabel[id];
        const index = (metrics.labels || []).findIndex((l) => l.id === id);
        return h(
          "tr",
          {},
          h("th", { scope: "row" }, name(id)),
          h("td", {}, formatPercent(m.precision)),
          h("td", {}, formatPercent(m.recall)),
          h("td", {}, formatPercent(m.f1)),
          h("td", {}, String(m.support)),
          h("td", { class: "optional" }, String(trainCounts[id] ?? "—")),
          multiLabel ? h("td", {}, thresholds[index] !== undefined ? Number(thresholds[index]).toFixed(2) : "—") : null,
          foldRecall ? h("td", {}, formatPercent(foldRecall[id])) : null,
        );
      }),
      "data numbers",
    ),
    h("p", { class: "hint" }, "Precision: of the images it gave this label, the share that had it. Recall: of the images that had it, the share it found."),
  );
}

/** Rows: the true label; columns: the prediction. Each cell is coloured by its share of the row. */
function confusionMatrix(matrix, name) {
  if (!matrix || !matrix.labels || !matrix.rows) return null;
  const { labels, rows } = matrix;
  return h(
    "section",
    { class: "panel", "aria-labelledby": "confusion-heading" },
    h("h3", { id: "confusion-heading" }, "Confusion matrix"),
    h("p", { class: "hint" }, "Rows: what the test image is. Columns: what the model said. Green on the diagonal is right; red elsewhere is a mistake."),
    dataTable(
      [
        h("span", { class: "visually-hidden" }, "True label \\ predicted"),
        ...labels.map((id) => [h("span", { class: "axis" }, "said "), name(id)]),
      ],
      rows.map((row, i) => {
        const total = row.reduce((sum, n) => sum + n, 0) || 1;
        return h(
          "tr",
          {},
          h("th", { scope: "row" }, h("span", { class: "axis" }, "is "), name(labels[i])),
          row.map((count, j) => {
            const share = count / total;
            return h(
              "td",
              {
                class: `${i === j ? "diag" : "off"}${share > 0.55 ? " strong" : ""}${count ? "" : " zero"}`,
                style: { "--share": share.toFixed(3) },
                title: `${name(labels[i])} taken for ${name(labels[j])}: ${count} (${formatPercent(share, 0)} of the row)`,
              },
              String(count),
            );
          }),
        );
      }),
      "confusion",
    ),
  );
}

/** The test images the model got wrong, as thumbnails (each fetched for its thumbnail URL). */
function mistakes(metrics, name, multiLabel, signal) {
  const wrong = metrics.misclassified || [];
  const section = h(
    "section",
    { class: "panel", "aria-labelledby": "mistakes-heading" },
    h("h3", { id: "mistakes-heading" }, `Misclassified test images (${wrong.length})`),
  );
  if (!wrong.length) {
    section.append(emptyState("None: every test image was recognised."));
    return section;
  }
  const shown = wrong.slice(0, MAX_MISTAKES_SHOWN);
  const cards = shown.map((mistake) => {
    const picture = h("div", { class: "thumb placeholder" }, "…");
    const caption = multiLabel
      ? [
          h("p", {}, h("span", { class: "hint" }, "Has: "), mistake.labels.map(name).join(", ") || "none of the tags"),
          h("p", {}, h("span", { class: "hint" }, "Predicted: "), mistake.predicted.map(name).join(", ") || "no tag"),
        ]
      : [
          h("p", {}, h("span", { class: "hint" }, "Is: "), name(mistake.label)),
          h("p", { class: "wrong" }, h("span", { class: "hint" }, "Taken for: "), `${name(mistake.predicted)} (${formatPercent(mistake.prob, 0)})`),
        ];
    return { mistake, picture, card: h("li", { class: "image-card mistake" }, picture, h("div", { class: "caption" }, caption)) };
  });
  append(section, [
    h("ul", { class: "image-grid" }, cards.map((c) => c.card)),
    wrong.length > shown.length ? h("p", { class: "hint" }, `${plural(wrong.length - shown.length, "more image")} not shown.`) : null,
  ]);
  loadThumbnails(cards, signal);
  return section;
}

/** Fetch `training-image/{id}` for each mistake, a few at a time, and put its thumbnail in. */
async function loadThumbnails(cards, signal) {
  let next = 0;
  async function worker() {
    while (next < cards.length && !signal.aborted) {
      const { mistake, picture } = cards[next++];
      try {
        const image = await get(`training-image/${mistake.image_id}/`);
        picture.replaceWith(h("img", { src: image.thumb_img_path, alt: `Test image ${mistake.image_id.slice(0, 8)}`, loading: "lazy", width: 160, height: 160 }));
      } catch (error) {
        replace(picture, error.status === 404 ? "image deleted since" : "could not load");
      }
    }
  }
  await Promise.all(Array.from({ length: THUMB_FETCHES_AT_ONCE }, () => worker()));
}
