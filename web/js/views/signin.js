// The sign-in screen: the API token is asked once, checked against the API, then kept in
// localStorage (lib/session.js) until "Sign out".

import { get, getApiBase } from "../api.js";
import { h, replace, uid } from "../lib/dom.js";
import { setToken } from "../lib/session.js";
import { errorBox } from "../lib/ui.js";
import { navigate } from "../router.js";

export async function renderSignIn(container, params) {
  const inputId = uid("token");
  const helpId = uid("help");
  const problem = h("div", { class: "form-problem" });
  const input = h("input", {
    id: inputId,
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": helpId,
    placeholder: "40 hexadecimal characters",
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "panel narrow", novalidate: true },
    h("label", { for: inputId }, "API token"),
    input,
    h(
      "p",
      { id: helpId, class: "hint" },
      "The first ",
      h("code", {}, "make run"),
      " printed one. Create more with ",
      h("code", {}, "kestrel token create --email you@example.com"),
      ". It stays in this browser until you sign out.",
    ),
    problem,
    h("div", { class: "actions" }, submit),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    replace(problem);
    submit.disabled = true;
    try {
      // Any authenticated call tells whether the API accepts the token.
      await get("task/", { page_size: 1 }, { token });
      setToken(token);
      navigate(params.next && params.next !== "/signin" ? params.next : "/tasks");
    } catch (error) {
      replace(problem, errorBox(error, "sign in"));
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });

  replace(
    container,
    h("h1", {}, "Sign in to Kestrel"),
    h("p", { class: "lead" }, "Enter an API token for ", h("code", {}, getApiBase()), "."),
    form,
  );
  input.focus();
}
