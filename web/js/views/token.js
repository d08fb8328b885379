// The API token screen: the token (hidden until asked), where the API is, and copy-ready curl
// and Python (ximilar-client) snippets — for one task on its API tab, generic on #/token.

import { getApiBase, getApiSource } from "../api.js";
import { clientEndpointFrom } from "../config.js";
import { h, replace } from "../lib/dom.js";
import { currentToken } from "../lib/session.js";
import { currentWorkspace } from "../lib/workspace.js";
import { copyButton } from "../lib/ui.js";
import { taskShell, userLabels } from "./task-common.js";

/** "#/token": the token and snippets with placeholders for the ids. */
export async function renderToken(container) {
  replace(container, h("h1", {}, "API token"));
  tokenScreen(container, null);
}

/** "#/tasks/ID/api": the same, with this task's ids filled in. */
export async function renderTaskApi(container, { taskId }) {
  const shell = await taskShell(container, taskId, "api");
  if (!shell) return;
  tokenScreen(shell.panel, shell.task);
}

function mask(token) {
  return token ? `${"•".repeat(Math.max(0, token.length - 4))}${token.slice(-4)}` : "(none)";
}

function tokenScreen(container, task) {
  const token = currentToken();
  const apiBase = getApiBase();
  let revealed = false;
  const blocks = []; // [{code, render(tokenText)}] redrawn when the token is shown or hidden

  const tokenCode = h("code", { class: "token" });
  const toggle = h("button", { type: "button", class: "small", "aria-pressed": "false" }, "Show");
  toggle.addEventListener("click", () => {
    revealed = !revealed;
    toggle.textContent = revealed ? "Hide" : "Show";
    toggle.setAttribute("aria-pressed", String(revealed));
    draw();
  });

  function snippet(title, language, render) {
    const code = h("code", { class: `language-${language}` });
    blocks.push({ code, render });
    return h(
      "figure",
      { class: "snippet" },
      h("figcaption", {}, h("span", {}, title), copyButton(() => render(token), "Copy")),
      h("pre", { tabindex: "0" }, code),
    );
  }

  function draw() {
    tokenCode.textContent = revealed ? token : mask(token);
    for (const block of blocks) block.code.textContent = block.render(revealed ? token : mask(token));
  }

  const taskId = task ? task.id : "TASK_ID";
  const [first] = task ? userLabels(task) : [];
  const labelId = first ? first.id : "LABEL_ID";
  const endpoint = clientEndpointFrom(apiBase);
  const workspace = currentWorkspace();
  const workspaceNote = workspace
    ? `# this workspace: add workspace=${workspace} to every query (or "workspace" to a JSON body)\n`
    : "";

  const curlSetup = (t) =>
    `export KESTREL=${apiBase.replace(/\/$/, "")}\nexport KESTREL_TOKEN=${t}\n${workspaceNote}`;
  const curl = (t) =>
    `${curlSetup(t)}auth="Authorization: Token $KESTREL_TOKEN"\n\n` +
    `# this task, its labels and its versions\n` +
    `curl -s -H "$auth" $KESTREL/task/${taskId}/\n` +
    `curl -s -H "$auth" "$KESTREL/label/?task=${taskId}"\n` +
    `curl -s -H "$auth" "$KESTREL/model/?task=${taskId}"\n\n` +
    `# upload a training image with a label${first ? ` (“${first.name}”)` : ""}\n` +
    `curl -s -H "$auth" -F img_path=@photo.jpg -F labels='["${labelId}"]' $KESTREL/training-image/\n\n` +
    `# train a new version\n` +
    `curl -s -H "$auth" -X POST $KESTREL/task/${taskId}/train/\n`;
  const classifyCurl = (t) =>
    `${curlSetup(t)}\n# classify a local file with the production version\n` +
    `curl -s -H "Authorization: Token $KESTREL_TOKEN" -H 'Content-Type: application/json' \\\n` +
    `     -d "{\\"task_id\\": \\"${taskId}\\", \\"records\\": [{\\"_base64\\": \\"$(base64 -w0 photo.jpg)\\"}]}" \\\n` +
    `     $KESTREL/classify/\n\n` +
    `# or an image on the web\n` +
    `curl -s -H "Authorization: Token $KESTREL_TOKEN" -H 'Content-Type: application/json' \\\n` +
    `     -d '{"task_id": "${taskId}", "records": [{"_url": "https://example.com/photo.jpg"}]}' \\\n` +
    `     $KESTREL/classify/\n`;
  const python = (t) =>
    `# pip install ximilar-client\nfrom ximilar.client import RecognitionClient\n\n` +
    `client = RecognitionClient("${t}", endpoint="${endpoint}"${workspace ? `, workspace="${workspace}"` : ""})\n` +
    `task, status = client.get_task("${taskId}")\n\n` +
    `result = task.classify([{"_file": "photo.jpg"}, {"_url": "https://example.com/photo.jpg"}])\n` +
    `for record in result["records"]:\n` +
    `    print(record["best_label"]["name"], record["best_label"]["prob"])\n\n` +
    `# upload a labelled image, then train a new version\n` +
    `client.upload_images([{"_file": "photo.jpg", "labels": ["${labelId}"]}])\n` +
    `task.train()\n`;

  container.append(
    h(
      "section",
      { class: "panel", "aria-labelledby": "token-heading" },
      h("h2", { id: "token-heading" }, "Your token"),
      h("div", { class: "token-row" }, tokenCode, toggle, copyButton(() => token, "Copy token")),
      h(
        "p",
        { class: "hint" },
        "Send it as ",
        h("code", {}, "Authorization: Token …"),
        ". Anyone holding it can use your account: revoke it with ",
        h("code", {}, "kestrel token revoke TOKEN_ID"),
        ". “Sign out” forgets it in this browser only.",
      ),
      h("dl", { class: "stats compact" }, h("div", { class: "stat" }, h("dt", {}, "API"), h("dd", {}, h("code", {}, apiBase), h("span", { class: "hint" }, ` (from ${getApiSource() || "the page origin"})`)))),
      h("p", {}, h("a", { href: `${apiBase}docs/`, target: "_blank", rel: "noopener" }, "Interactive API reference")),
    ),
    h(
      "section",
      { class: "panel", "aria-labelledby": "snippets-heading" },
      h("h2", { id: "snippets-heading" }, task ? `Use “${task.name}” from code` : "Use the API from code"),
      task ? null : h("p", { class: "hint" }, "Open a task’s API tab to get these with its ids filled in."),
      snippet("curl", "sh", curl),
      snippet("curl: classify", "sh", classifyCurl),
      snippet("Python (ximilar-client)", "python", python),
      endpoint.includes("127.0.0.1")
        ? h("p", { class: "hint" }, "The ximilar client skips its online account check only when the endpoint contains “localhost”: use http://localhost:… instead of 127.0.0.1.")
        : null,
    ),
  );
  draw();
}
