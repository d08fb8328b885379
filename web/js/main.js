// The console's entry point: find the API (config.js), register the screens, guard them
// behind the token, and start the hash router.

import { configureApi } from "./api.js";
import { loadConfig } from "./config.js";
import { h, replace } from "./lib/dom.js";
import { clearToken, currentToken } from "./lib/session.js";
import { anyUploading } from "./lib/uploads.js";
import { currentPath, navigate, route, setGuard, startRouter } from "./router.js";
import { renderLabelImages } from "./views/label-images.js";
import { renderModelEvaluation } from "./views/model-evaluation.js";
import { renderSignIn } from "./views/signin.js";
import { renderTaskClassify } from "./views/task-classify.js";
import { renderTaskData } from "./views/task-data.js";
import { renderTaskModels } from "./views/task-models.js";
import { renderTaskReview } from "./views/task-review.js";
import { renderTaskTrain } from "./views/task-train.js";
import { renderTasks } from "./views/tasks.js";
import { renderTaskApi, renderToken } from "./views/token.js";
import { forgetWorkspaces, refreshWorkspaces, setUpWorkspaceSwitcher } from "./views/workspace-switcher.js";

function renderNotFound(container) {
  replace(
    container,
    h("h1", {}, "Page not found"),
    h("p", {}, "There is nothing at this address. ", h("a", { href: "#/tasks" }, "Go to your tasks"), "."),
  );
}

route("/signin", renderSignIn);
route("/tasks", renderTasks);
route("/tasks/:taskId", renderTaskData);
route("/tasks/:taskId/labels/:labelId", renderLabelImages);
route("/tasks/:taskId/train", renderTaskTrain);
route("/tasks/:taskId/models", renderTaskModels);
route("/tasks/:taskId/models/:modelId", renderModelEvaluation);
route("/tasks/:taskId/classify", renderTaskClassify);
route("/tasks/:taskId/review", renderTaskReview);
route("/tasks/:taskId/api", renderTaskApi);
route("/token", renderToken);
route("/not-found", renderNotFound);

// Without a token every screen is the sign-in screen, which comes back to the asked one.
setGuard((path) => (currentToken() || path === "/signin" ? null : { render: renderSignIn, params: { next: path } }));

/** Header: "Sign out" only when signed in; the current section marked for assistive tech. */
function updateHeader() {
  const signedIn = Boolean(currentToken());
  document.getElementById("sign-out").hidden = !signedIn;
  refreshWorkspaces(signedIn);
  const path = currentPath();
  for (const link of document.querySelectorAll("[data-nav]")) {
    const active = path.startsWith(`/${link.dataset.nav}`);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  clearToken();
  forgetWorkspaces();
  navigate("/signin");
});
window.addEventListener("kestrel:route", updateHeader);
window.addEventListener("beforeunload", (event) => {
  if (anyUploading()) event.preventDefault(); // the browser asks "Leave site?"
});

const config = await loadConfig();
configureApi(config.apiBase, config.source);
document.getElementById("api-docs").href = `${config.apiBase}docs/`;
setUpWorkspaceSwitcher();
// The workspace list first: a workspace chosen earlier may have been deleted since.
if (currentToken()) await refreshWorkspaces(true);
updateHeader();
await startRouter();
