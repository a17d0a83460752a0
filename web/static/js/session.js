/** The header's sign-in state, shown only when the server requires API tokens: sign out, or sign out and revoke the token. */

import * as api from "./api.js";
import { byId } from "./dom.js";

async function showSession() {
  const session = await api.get("/session", {}, { redirect401: false });
  if (!session.auth || location.pathname === api.url("/login")) return;
  const box = byId("session");
  box.hidden = false;
  byId("session-name").textContent = session.token ? `Signed in as ${session.token} (${session.role})` : "Not signed in";
  const button = byId("sign-out");
  if (!session.token) {
    button.textContent = "Sign in";
    button.addEventListener("click", api.signIn);
    return;
  }
  button.addEventListener("click", async () => {
    await api.post("/logout", undefined, { redirect401: false });
    location.assign(api.url("/login"));
  });
  const revoke = byId("revoke-token");
  revoke.hidden = false;
  revoke.addEventListener("click", async () => {
    const question = `Revoke the token "${session.token}"? Every client that uses it (scripts, notebooks, other browsers) is refused from now on.`;
    if (!window.confirm(question)) return;
    await api.post("/session/revoke", undefined, { redirect401: false });
    location.assign(api.url("/login"));
  });
}

showSession().catch(() => {
  // The page itself reports an unreachable server; the header stays quiet.
});
