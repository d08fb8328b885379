// The tasks screen: list (paged), create (both types), rename, delete.

import { del, patch, post } from "../api.js";
import { formatDate, h, plural, replace, uid } from "../lib/dom.js";
import { stateBadge } from "../lib/models.js";
import { pagedList } from "../lib/pager.js";
import { confirmDialog, dataTable, emptyState, errorBox, openDialog, toast } from "../lib/ui.js";
import { navigate } from "../router.js";
import { TASK_TYPES, typeBadge, userLabels } from "./task-common.js";

export async function renderTasks(container) {
  const list = pagedList({
    path: "task/",
    params: { page_size: 20 },
    label: "Task pages",
    doing: "load your tasks",
    renderItems: (tasks) => taskTable(tasks, list),
    renderEmpty: () =>
      emptyState(
        "No tasks yet.",
        "A task is one recognition problem, such as “cat or coffee”. Create your first one above.",
      ),
  });
  replace(
    container,
    h("h1", {}, "Tasks"),
    createForm(),
    h("section", { class: "panel", "aria-labelledby": "your-tasks" }, h("h2", { id: "your-tasks" }, "Your tasks"), list.element),
  );
}

/** The "New task" form: name, type, description. */
function createForm() {
  const nameId = uid("name");
  const typeId = uid("type");
  const descriptionId = uid("description");
  const name = h("input", { id: nameId, name: "name", autocomplete: "off", placeholder: "e.g. Cats and coffee" });
  const type = h(
    "select",
    { id: typeId, name: "type" },
    TASK_TYPES.map((t) => h("option", { value: t.value }, `${t.name} — ${t.help}`)),
  );
  const description = h("input", { id: descriptionId, name: "description", autocomplete: "off" });
  const problem = h("div", { class: "form-problem" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create task");
  const form = h(
    "form",
    { class: "panel form-grid", "aria-label": "New task" },
    h("h2", {}, "New task"),
    h("div", { class: "field" }, h("label", { for: nameId }, "Name"), name),
    h("div", { class: "field" }, h("label", { for: typeId }, "Type"), type),
    h("div", { class: "field wide" }, h("label", { for: descriptionId }, "Description (optional)"), description),
    problem,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(problem);
    submit.disabled = true;
    try {
      // The API checks the name (and says what is wrong): no second set of rules here.
      const task = await post("task/", { name: name.value, type: type.value, description: description.value });
      toast(`Task “${task.name}” created.`, "success");
      navigate(`/tasks/${task.id}`);
    } catch (error) {
      replace(problem, errorBox(error, "create the task"));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function taskTable(tasks, list) {
  return dataTable(
    [
      "Name",
      "Type",
      "Labels",
      "In production",
      { label: "Last training", class: "optional" },
      { label: "Created", class: "optional" },
      h("span", { class: "visually-hidden" }, "Actions"),
    ],
    tasks.map((task) => taskRow(task, list)),
  );
}

function taskRow(task, list) {
  const rename = h("button", { type: "button", class: "small" }, "Rename");
  const remove = h("button", { type: "button", class: "small danger" }, "Delete");
  rename.addEventListener("click", async () => {
    if (await renameDialog(task)) list.reload();
  });
  remove.addEventListener("click", async () => {
    const sure = await confirmDialog(
      `Delete “${task.name}”?`,
      "Its model versions are deleted with it. Its labels and training images stay (other tasks may use them).",
      { confirmText: "Delete task" },
    );
    if (!sure) return;
    try {
      await del(`task/${task.id}/`);
      toast(`Task “${task.name}” deleted.`, "success");
      list.reload(true);
    } catch (error) {
      toast(errorBox(error, "delete the task"), "error");
    }
  });
  const labels = userLabels(task);
  return h(
    "tr",
    {},
    h("th", { scope: "row" }, h("a", { href: `#/tasks/${task.id}` }, task.name)),
    h("td", {}, typeBadge(task.type)),
    h("td", {}, plural(labels.length, "label")),
    h("td", {}, task.production_version > 0 ? `version ${task.production_version}` : "—"),
    h("td", { class: "optional" }, task.last_train_status ? stateBadge(task.last_train_status) : "never trained"),
    h("td", { class: "optional" }, formatDate(task.created)),
    h("td", { class: "row-actions" }, rename, remove),
  );
}

/** Rename (and re-describe) a task; resolves to the changed task or null. */
export function renameDialog(task) {
  const nameId = uid("name");
  const descriptionId = uid("description");
  const name = h("input", { id: nameId, value: task.name, autocomplete: "off" });
  const description = h("input", { id: descriptionId, value: task.description || "", autocomplete: "off" });
  return openDialog({
    title: `Rename “${task.name}”`,
    body: [
      h("div", { class: "field" }, h("label", { for: nameId }, "Name"), name),
      h("div", { class: "field" }, h("label", { for: descriptionId }, "Description"), description),
    ],
    submitText: "Save",
    onSubmit: () => patch(`task/${task.id}/`, { name: name.value, description: description.value }),
  });
}
