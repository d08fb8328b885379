// The workspace the console works in: chosen in the header, kept in this browser's
// localStorage, and sent as `workspace` with every recognition call. None chosen: the
// account's default workspace (what the API uses without the parameter).

const KEY = "kestrel.workspace";
let memory = "";

export function currentWorkspace() {
  try {
    return window.localStorage.getItem(KEY) || memory;
  } catch {
    return memory;
  }
}

export function setWorkspace(id) {
  memory = id || "";
  try {
    if (id) window.localStorage.setItem(KEY, id);
    else window.localStorage.removeItem(KEY);
  } catch {
    // Not persisted; the choice holds until the page is closed.
  }
}
