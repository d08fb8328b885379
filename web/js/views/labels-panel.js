// The labels of a task: image counts and progress toward the 20-image minimum; create,
// attach and detach. The negative label of a multi_label task is shown but cannot be detached.

import { listAll, post } from "../api.js";
import { h, plural, replace, uid } from "../lib/dom.js";
import { dataTable, emptyState, errorBox, meter, toast } from "../lib/ui.js";
import { MIN_IMAGES_PER_LABEL, negativeLabel, userLabels } from "./task-common.js";

/** Create a label (tag or category, after the task's type) and attach it to the task. */
export async function createAndAttach(task, name) {
  const type = task.type === "multi_label" ? "tag" : "category";
  const label = await post("label/", { name, type });
  await post(`task/${task.id}/add-label/`, { label_id: label.id });
  return label;
}

/**
 * @param {object} task      the task JSON
 * @param {Function} changed called after a change, to load the task again
 * @returns {{element: HTMLElement, update: Function}}
 */
export function labelsPanel(task, changed) {
  const table = h("div", { class: "labels-table" });
  const problem = h("div", { class: "form-problem", "aria-live": "polite" });
  const attachSlot = h("div");
  const element = h(
    "section",
    { class: "panel", "aria-labelledby": "labels-heading" },
    h("h2", { id: "labels-heading" }, "Labels"),
    table,
    problem,
    createForm(),
    attachSlot,
  );

  function createForm() {
    const nameId = uid("label-name");
    const name = h("input", { id: nameId, name: "label-name", autocomplete: "off", placeholder: "e.g. cat" });
    const submit = h("button", { type: "submit" }, "Create and attach");
    const form = h(
      "form",
      { class: "inline-form", "aria-label": "Create a label" },
      h("label", { for: nameId }, "New label"),
      name,
      submit,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      replace(problem);
      submit.disabled = true;
      try {
        // No client-side rule on the name: the API decides, and its detail is shown.
        const label = await createAndAttach(task, name.value);
        name.value = "";
        toast(`Label “${label.name}” created and attached.`, "success");
        await changed();
      } catch (error) {
        replace(problem, errorBox(error, "create the label"));
      } finally {
        submit.disabled = false;
        name.focus();
      }
    });
    return form;
  }

  /** "Attach an existing label": labels of the account that this task does not have yet. */
  async function drawAttach() {
    let all;
    try {
      all = await listAll("label/");
    } catch (error) {
      replace(attachSlot, errorBox(error, "list your labels"));
      return;
    }
    const attached = new Set(task.labels.map((label) => label.id));
    const candidates = all.filter((label) => !attached.has(label.id) && !label.negative_for_task);
    if (!candidates.length) {
      replace(attachSlot);
      return;
    }
    const selectId = uid("attach");
    const select = h(
      "select",
      { id: selectId },
      candidates.map((label) =>
        h("option", { value: label.id }, `${label.name} (${plural(label.images_count, "image")})`),
      ),
    );
    const submit = h("button", { type: "submit" }, "Attach");
    const form = h(
      "form",
      { class: "inline-form", "aria-label": "Attach an existing label" },
      h("label", { for: selectId }, "Existing label"),
      select,
      submit,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      replace(problem);
      submit.disabled = true;
      try {
        await post(`task/${task.id}/add-label/`, { label_id: select.value });
        await changed();
      } catch (error) {
        replace(problem, errorBox(error, "attach the label"));
      } finally {
        submit.disabled = false;
      }
    });
    replace(attachSlot, form);
  }

  async function detach(label) {
    replace(problem);
    try {
      await post(`task/${task.id}/remove-label/`, { label_id: label.id });
      toast(`Label “${label.name}” detached (its images keep it).`, "success");
      await changed();
    } catch (error) {
      replace(problem, errorBox(error, `detach “${label.name}”`));
    }
  }

  function row(label, negative) {
    const count = label.images_count;
    const ready = count >= MIN_IMAGES_PER_LABEL;
    const progress = negative
      ? h("span", { class: "hint" }, "images with none of the tags (optional)")
      : meter(Math.min(count, MIN_IMAGES_PER_LABEL) / MIN_IMAGES_PER_LABEL, `${label.name}: toward training`, {
          kind: ready ? "ok" : "",
          text: ready ? "ready" : `${count} / ${MIN_IMAGES_PER_LABEL}`,
        });
    const actions = [h("a", { class: "button small", href: `#/tasks/${task.id}/labels/${label.id}` }, "Images")];
    if (negative) {
      actions.push(
        h("span", { class: "hint", title: "The negative label stays with its multi_label task" }, "automatic"),
      );
    } else {
      const button = h(
        "button",
        { type: "button", class: "small", "aria-label": `Detach ${label.name}` },
        "Detach",
      );
      button.addEventListener("click", () => detach(label));
      actions.push(button);
    }
    return h(
      "tr",
      { dataset: { labelId: label.id } },
      h("th", { scope: "row" }, label.name, negative ? h("span", { class: "badge muted" }, "negative") : null),
      h("td", { class: "count", dataset: { count: String(count) } }, String(count)),
      h("td", { class: "progress-cell" }, progress),
      h("td", { class: "row-actions" }, actions),
    );
  }

  function draw() {
    const labels = userLabels(task);
    const negative = negativeLabel(task);
    if (!labels.length && !negative) {
      replace(
        table,
        emptyState("No labels yet.", `Create at least two labels below, then give each ${MIN_IMAGES_PER_LABEL}+ images.`),
      );
      return;
    }
    replace(
      table,
      dataTable(
        [
          "Label",
          "Images",
          `Toward training (${MIN_IMAGES_PER_LABEL} needed)`,
          h("span", { class: "visually-hidden" }, "Actions"),
        ],
        [labels.map((label) => row(label, false)), negative ? row(negative, true) : null],
      ),
      labels.length
        ? null
        : h("p", { class: "hint" }, `Create at least two labels, then give each ${MIN_IMAGES_PER_LABEL}+ images.`),
    );
  }

  draw();
  drawAttach();
  return {
    element,
    update(next) {
      const labelsChanged = next.labels.map((l) => l.id).join() !== task.labels.map((l) => l.id).join();
      task = next;
      draw();
      if (labelsChanged) drawAttach();
    },
  };
}
