// Similar training images (`POST task/{id}/similar/`): a strip of thumbnails with their labels and
// similarity, shown under each Classify result and in the Data tab's "Find similar" dialog.
// Neighbours whose labels differ from the expected ones are marked: a near-duplicate with
// another label is often a mislabelled image.

import { post } from "../api.js";
import { formatPercent, h, replace } from "../lib/dom.js";
import { loading, openDialog } from "../lib/ui.js";

export const SIMILAR_K = 6;

/** Ask for the neighbours of `records` (at most 10); resolves to the answer's records. */
export async function findSimilar(taskId, records, { k = SIMILAR_K, version } = {}) {
  const body = { records, k };
  if (version) body.version = version;
  return (await post(`task/${taskId}/similar/`, body)).records;
}

/** The thumbnails of one record's neighbours; `expected`: label ids the query is known to have. */
export function similarStrip(record, { expected = null, caption = "Similar training images" } = {}) {
  const status = record._status || { code: 200, text: "OK" };
  if (status.code >= 300) return h("p", { class: "hint similar-unavailable" }, `${caption}: ${status.text}`);
  const neighbours = record.similar || [];
  const wanted = expected ? new Set(expected) : null;
  return h(
    "figure",
    { class: "similar", dataset: { role: "similar" } },
    h("figcaption", {}, caption),
    neighbours.length
      ? h(
          "ul",
          { class: "similar-grid", "aria-label": caption },
          neighbours.map((n) => {
            const differs = wanted !== null && !n.labels.some((l) => wanted.has(l.id));
            return h(
              "li",
              { class: differs ? "similar-item differs" : "similar-item", dataset: { imageId: n.id } },
              h("img", { src: n.thumb_img_path, alt: `Training image ${n.id.slice(0, 8)}`, loading: "lazy", width: 96, height: 96 }),
              h("span", { class: "similarity", title: "cosine similarity of the descriptors" }, formatPercent(Math.max(0, n.similarity))),
              h(
                "span",
                { class: "similar-labels" },
                n.labels.length ? n.labels.map((l) => l.name).join(", ") : "no label",
                differs ? h("strong", { class: "wrong" }, " · other label") : null,
              ),
            );
          }),
        )
      : h("p", { class: "hint" }, "No training images to compare with."),
  );
}

/** Where a Classify result's neighbours will go, until they are found. */
export function similarPlaceholder() {
  return h("div", { class: "similar-holder" }, loading("Finding similar training images…"));
}

/** Under Classify results: one `similar/` call for the batch's records, each strip in its holder. */
export function similarUnderResults(taskId, records, holders, version) {
  findSimilar(taskId, records, { version })
    .then((answers) => answers.forEach((answer, i) => replace(holders[i], similarStrip(answer))))
    .catch((error) => {
      for (const holder of holders) replace(holder, h("p", { class: "hint similar-unavailable" }, `Similar training images: ${error.message}`));
    });
}

/** The Data tab's "Find similar" for a training image: a dialog of its nearest training images. */
export function similarDialog(task, image) {
  const holder = h("div", { class: "similar-holder" }, loading("Finding similar training images…"));
  const expected = image.labels.map((l) => l.id);
  findSimilar(task.id, [{ training_image_id: image.id }], { k: 12 })
    .then(([answer]) => replace(holder, similarStrip(answer, { expected, caption: "Nearest training images" })))
    .catch((error) => replace(holder, h("p", { class: "hint similar-unavailable" }, error.message)));
  return openDialog({
    title: "Similar images",
    body: [
      h("img", { class: "dialog-image", src: image.thumb_img_path, alt: "The image" }),
      h(
        "p",
        { class: "hint" },
        "From the images the production version was trained on, most similar first (the image itself is first). ",
        "An image of another label this close may be a duplicate or mislabelled.",
      ),
      holder,
    ],
    submitText: "Close",
  });
}
