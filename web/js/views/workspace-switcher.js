// The header's workspace switcher: every workspace of the account, the one in use selected,
// and "New workspace…" to create one. Switching shows that workspace's tasks: ids of one
// workspace mean nothing in another.

import { accountUrl, get, post } from "../api.js";
import { h } from "../lib/dom.js";
import { toast } from "../lib/ui.js";
import { currentWorkspace, setWorkspace } from "../lib/workspace.js";
import { navigate } from "../router.js";

const NEW = "__new__";
let loaded = null; // the list shown, or null until fetched for this sign-in

function select() {
  return document.getElementById("workspace-select");
}

function fill(workspaces) {
  const chosen = workspaces.some((w) => w.id === currentWorkspace()) ? currentWorkspace() : workspaces[0].id;
  if (chosen !== currentWorkspace()) setWorkspace(workspaces[0].is_default ? "" : chosen);
  select().replaceChildren(
    ...workspaces.map((w) => h("option", { value: w.id, selected: w.id === chosen }, w.name)),
    h("option", { value: NEW }, "New workspace…"),
  );
  select().dataset.current = chosen;
}

/** Show the switcher when signed in (fetching the list once), hide it otherwise. */
export async function refreshWorkspaces(signedIn) {
  const holder = document.getElementById("workspace-switcher");
  holder.hidden = !signedIn;
  if (!signedIn) {
    loaded = null;
    return;
  }
  if (loaded) return;
  try {
    loaded = await get(accountUrl("workspace/"));
    fill(loaded);
  } catch (error) {
    loaded = null;
    holder.hidden = true; // the page itself reports API problems; the header stays quiet
  }
}

async function createWorkspace() {
  const name = window.prompt("Name of the new workspace");
  if (!name || !name.trim()) return null;
  const created = await post(accountUrl("workspace/"), { name: name.trim() });
  loaded = [...loaded, created];
  return created;
}

async function switched() {
  let id = select().value;
  if (id === NEW) {
    try {
      const created = await createWorkspace();
      if (!created) {
        select().value = select().dataset.current; // cancelled: stay where we were
        return;
      }
      id = created.id;
      toast(`Workspace "${created.name}" created`);
    } catch (error) {
      select().value = select().dataset.current;
      toast(`Could not create the workspace: ${error.detail || error.message}`, "error");
      return;
    }
  }
  const workspace = loaded.find((w) => w.id === id);
  setWorkspace(workspace.is_default ? "" : workspace.id);
  fill(loaded);
  navigate("/tasks");
}

/** Wire the switcher; `onSignOut` forgets the list and the choice (another account may sign in). */
export function setUpWorkspaceSwitcher() {
  select().addEventListener("change", switched);
}

export function forgetWorkspaces() {
  loaded = null;
  setWorkspace("");
}
