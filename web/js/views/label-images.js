// The images of one label, a page at a time: thumbnails with their labels, relabel, find similar
// (its nearest training images: duplicates, mislabelled look-alikes), delete.

import { del, get, post } from "../api.js";
import { h, plural, replace, uid } from "../lib/dom.js";
import { pagedList } from "../lib/pager.js";
import { confirmDialog, emptyState, errorBox, openDialog, toast } from "../lib/ui.js";
import { similarDialog } from "./similar-images.js";
import { taskShell } from "./task-common.js";

const PAGE_SIZE = 24;

export async function renderLabelImages(container, { taskId, labelId }) {
  const shell = await taskShell(container, taskId, "data");
  if (!shell) return;
  const { task, panel } = shell;
  let label;
  try {
    label = await get(`label/${encodeURIComponent(labelId)}/`);
  } catch (error) {
    panel.append(errorBox(error, "load this label"));
    return;
  }
  const problem = h("div", { "aria-live": "polite" });
  const list = pagedList({
    path: "training-image/",
    params: { labels: label.id, page_size: PAGE_SIZE },
    label: `Pages of “${label.name}”`,
    doing: `load the images of “${label.name}”`,
    renderItems: (images) => h("ul", { class: "image-grid" }, images.map((image) => card(image))),
    renderEmpty: () =>
      emptyState(
        `No images with “${label.name}” yet.`,
        "Upload some on the Data tab.",
        h("a", { class: "button", href: `#/tasks/${task.id}` }, "Back to Data"),
      ),
  });

  function card(image) {
    const relabel = h("button", { type: "button", class: "small" }, "Labels…");
    const remove = h("button", { type: "button", class: "small danger" }, "Delete");
    const similar = h("button", { type: "button", class: "small" }, "Find similar");
    similar.disabled = task.production_version < 1;
    similar.title = similar.disabled ? "Train the task first: the search uses its production version" : "";
    similar.addEventListener("click", () => similarDialog(task, image));
    relabel.addEventListener("click", async () => {
      if (await relabelDialog(task, image)) list.reload();
    });
    remove.addEventListener("click", async () => {
      const sure = await confirmDialog("Delete this image?", "It is removed from every label and task.", {
        confirmText: "Delete image",
      });
      if (!sure) return;
      try {
        await del(`training-image/${image.id}/`);
        toast("Image deleted.", "success");
        list.reload();
      } catch (error) {
        replace(problem, errorBox(error, "delete the image"));
      }
    });
    return h(
      "li",
      { class: "image-card", dataset: { imageId: image.id } },
      h("img", {
        src: image.thumb_img_path,
        alt: `Training image ${image.id.slice(0, 8)}`,
        loading: "lazy",
        width: 160,
        height: 160,
      }),
      h(
        "div",
        { class: "chips" },
        image.labels.map((l) => h("span", { class: "chip" }, l.name)),
        image.test_image ? h("span", { class: "chip test", title: "Always used for evaluation" }, "test") : null,
      ),
      h("div", { class: "card-actions" }, relabel, similar, remove),
    );
  }

  panel.append(
    h("p", {}, h("a", { href: `#/tasks/${task.id}` }, "← Labels")),
    h("h2", {}, `Images of “${label.name}”`, h("span", { class: "hint" }, ` ${plural(label.images_count, "image")}`)),
    problem,
    list.element,
  );
}

/** Tick the task's labels an image should carry; applies the difference. Resolves true on change. */
function relabelDialog(task, image) {
  const has = new Set(image.labels.map((l) => l.id));
  const boxes = task.labels.map((label) => {
    const id = uid("label");
    const box = h("input", { type: "checkbox", id, value: label.id, checked: has.has(label.id) });
    return { label, box, row: h("div", { class: "check" }, box, h("label", { for: id }, label.name)) };
  });
  return openDialog({
    title: "Labels of this image",
    body: [
      h("img", { class: "dialog-image", src: image.thumb_img_path, alt: "The image" }),
      h("fieldset", {}, h("legend", {}, "Labels of this task"), boxes.map((b) => b.row)),
    ],
    submitText: "Save labels",
    onSubmit: async () => {
      let changed = false;
      for (const { label, box } of boxes) {
        if (box.checked === has.has(label.id)) continue;
        await post(`training-image/${image.id}/${box.checked ? "add" : "remove"}-label/`, { label_id: label.id });
        changed = true;
      }
      return changed;
    },
  });
}
