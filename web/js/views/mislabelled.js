// "Possibly mislabelled": the training images whose own label the model's out-of-fold prediction
// (from a model that never saw the image) disagrees with most, from `model/{id}` ->
// `possibly_mislabelled`. Each card shows the thumbnail, the label it was trained with and the
// suggestion, with one-click "Relabel to …" (the label API the Data tab uses:
// `training-image/{id}/add-label/` then `remove-label/`) and "Keep" (dismisses the card in this
// view only: nothing is stored, and a next training lists the image again if its model still
// disagrees).

import { post } from "../api.js";
import { append, formatPercent, h, plural, replace } from "../lib/dom.js";
import { emptyState, toast } from "../lib/ui.js";

/**
 * The labels to add and remove so that the image carries `suggested` instead of `trained` among
 * the card's labels. Tags: an image left with no tag gets the task's negative label (or it would
 * drop out of training), and one given a tag loses it.
 */
export function relabelChanges(entry, current, negativeId) {
  const trained = new Set(entry.labels);
  const wanted = new Set(entry.suggested);
  const add = [...wanted].filter((id) => !current.has(id));
  const remove = [...trained].filter((id) => !wanted.has(id) && current.has(id));
  if (negativeId) {
    if (!wanted.size && !current.has(negativeId)) add.push(negativeId);
    if (wanted.size && current.has(negativeId)) remove.push(negativeId);
  }
  return { add, remove };
}

/** True when the image's labels now are the suggestion (relabelled since, here or elsewhere). */
function alreadyRelabelled(entry, current, cardLabels) {
  if (!current) return false;
  const now = [...current].filter((id) => cardLabels.has(id)).sort();
  return JSON.stringify(now) === JSON.stringify([...entry.suggested].sort());
}

function names(ids, name, none) {
  return ids.length ? ids.map(name).join(", ") : none;
}

export function mislabelledSection(model, task, name) {
  const metrics = model.metrics || {};
  const entries = model.possibly_mislabelled ?? metrics.possibly_mislabelled;
  if (!Array.isArray(entries)) return null; // trained before the finder
  const total = model.possibly_mislabelled_total ?? metrics.possibly_mislabelled_total ?? entries.length;
  const multiLabel = metrics.task_type === "multi_label";
  const none = multiLabel ? "no tag" : "none";
  const cardLabels = new Set((metrics.labels || []).map((label) => label.id));
  const negativeId = multiLabel ? (task.labels || []).find((label) => label.negative_for_task)?.id : null;
  const section = h(
    "section",
    { class: "panel", "aria-labelledby": "mislabelled-heading" },
    h("h3", { id: "mislabelled-heading" }, `Possibly mislabelled training images (${total})`),
    h(
      "p",
      { class: "hint" },
      "Images whose label a model that never saw them disagrees with by a wide margin (at least 50 points): " +
        "check each one, relabel it or keep its label. Relabelled images count from the next training.",
    ),
  );
  if (!entries.length) {
    section.append(emptyState("None: a model that never saw them agreed with every label."));
    return section;
  }

  const cards = entries.map((entry) => {
    const current = Array.isArray(entry.current_labels) ? new Set(entry.current_labels) : null;
    const deleted = model.possibly_mislabelled && entry.current_labels === null;
    const status = h("p", { class: "mislabel-status", role: "status" });
    const actions = h("div", { class: "card-actions" });
    const card = h(
      "li",
      { class: "image-card mislabelled", dataset: { imageId: entry.image_id } },
      entry.thumb_img_path
        ? h("img", { src: entry.thumb_img_path, alt: `Training image ${entry.image_id.slice(0, 8)}`, loading: "lazy", width: 160, height: 160 })
        : h("div", { class: "thumb placeholder" }, deleted ? "image deleted since" : "no thumbnail"),
      h(
        "div",
        { class: "caption" },
        h("p", {}, h("span", { class: "hint" }, "Labelled: "), names(entry.labels, name, none), probsOf(entry.labels, entry, multiLabel)),
        h("p", { class: "wrong" }, h("span", { class: "hint" }, "Model says: "), names(entry.suggested, name, none), probsOf(entry.suggested, entry, multiLabel)),
        status,
      ),
      actions,
    );

    function settle(text, kind) {
      card.classList.add(kind);
      replace(status, text);
      actions.replaceChildren();
    }

    if (deleted) settle("Deleted since the training.", "kept");
    else if (entry.kept) settle(`Kept as ${names(entry.labels, name, none)}.`, "kept");
    else if (alreadyRelabelled(entry, current, cardLabels)) settle(`Relabelled to ${names(entry.suggested, name, none)}.`, "relabelled");
    else {
      const relabel = h("button", { type: "button", class: "small primary" }, `Relabel to ${names(entry.suggested, name, none)}`);
      const keep = h("button", { type: "button", class: "small" }, "Keep");
      relabel.addEventListener("click", async () => {
        relabel.disabled = keep.disabled = true;
        const carried = current || new Set(entry.labels);
        const { add, remove } = relabelChanges(entry, carried, negativeId);
        try {
          // Add before removing: a failure half-way leaves the image with both, never with none.
          for (const id of add) await post(`training-image/${entry.image_id}/add-label/`, { label_id: id });
          for (const id of remove) await post(`training-image/${entry.image_id}/remove-label/`, { label_id: id });
          // Remembered on the entry: a redraw of the page (a deploy) keeps the card settled.
          entry.current_labels = [...carried, ...add].filter((id) => !remove.includes(id));
          settle(`Relabelled to ${names(entry.suggested, name, none)}.`, "relabelled");
          toast("Relabelled: the next training learns the new label.");
        } catch (error) {
          relabel.disabled = keep.disabled = false;
          replace(status, `Could not relabel: ${error.detail || error.message}`);
          status.classList.add("error");
        }
      });
      keep.addEventListener("click", () => {
        entry.kept = true;
        settle(`Kept as ${names(entry.labels, name, none)}.`, "kept");
      });
      actions.append(relabel, keep);
    }
    return card;
  });
  append(section, [
    h("ul", { class: "image-grid" }, cards),
    total > entries.length ? h("p", { class: "hint" }, `${plural(total - entries.length, "more image")} passed the cut; the card lists the first ${entries.length}.`) : null,
  ]);
  return section;
}

/** " (12 %)" for one label; for tags, each tag's probability. */
function probsOf(ids, entry, multiLabel) {
  const probs = entry.probs || {};
  const shown = ids.filter((id) => probs[id] !== undefined);
  if (!shown.length) return null;
  const text = multiLabel ? shown.map((id) => formatPercent(probs[id], 0)).join(", ") : formatPercent(probs[shown[0]], 0);
  return h("span", { class: "hint" }, ` (${text})`);
}
