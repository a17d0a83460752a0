/** Sign in with an API token; the server keeps it in an HttpOnly cookie. */

import * as api from "./api.js";
import { byId } from "./dom.js";

const form = byId("login-form");
const input = byId("token");
const error = byId("token-error");

/** Where to go after signing in: a path of this site only, never another origin. */
function nextPage() {
  const next = new URLSearchParams(location.search).get("next");
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : api.url("/");
}

function showError(message) {
  error.textContent = message;
  error.hidden = !message;
  input.setAttribute("aria-invalid", message ? "true" : "false");
  if (message) input.setAttribute("aria-describedby", "token-error");
  else input.removeAttribute("aria-describedby");
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = input.value.trim();
  if (!token) {
    showError("Paste an API token.");
    input.focus();
    return;
  }
  const button = byId("login-submit");
  button.disabled = true;
  try {
    await api.post("/login", { token }, { redirect401: false });
    location.assign(nextPage());
  } catch (failure) {
    const field = failure.errors?.find((e) => e.field === "token");
    showError(field ? `The token ${field.message}.` : failure.detail ?? String(failure));
    input.focus();
  } finally {
    button.disabled = false;
  }
});
