// Who the user is: a display name and the token the server issued for it,
// kept together in localStorage so every page and tab shares them, and the
// one form that chooses or changes the name.

import { createSession } from "./chat-client.js";

const STORAGE_KEY = "chat.session";

/** The stored `{token, user: {id, name}}`, or null. */
export function loadSession() {
  try {
    const session = JSON.parse(localStorage.getItem(STORAGE_KEY));
    if (session && typeof session.token === "string" && session.user) return session;
  } catch {
    // A corrupt entry is as good as none: the user picks a name again.
  }
  return null;
}

function saveSession(session) {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  showIdentity(session);
}

/** Fill the "Signed in as" header line. */
export function showIdentity(session) {
  document.getElementById("whoami-name").textContent = session ? session.user.name : "";
  document.getElementById("whoami").hidden = !session;
}

/** JSON request to the server's API; resolves to `{status, data}`, data null if the body is not JSON. */
export async function api(path, { method = "GET", body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null); // a proxy's error page is reported by status alone
  return { status: response.status, data };
}

/** The message of an API error body (`{error: {code, message}}`), else `fallback`. */
export function apiErrorMessage(data, fallback) {
  return data && data.error ? data.error.message : fallback;
}

/** Show `message` in `element`, or hide it when the message is empty. */
export function showText(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

/**
 * Open the name form and resolve with a new session once the server accepted
 * the name, or with null if the user cancelled a change. Only one form is
 * open at a time: concurrent callers share the same answer.
 */
let pendingAsk = null;
function askForName({ current = null } = {}) {
  pendingAsk ??= runNameForm(current).finally(() => {
    pendingAsk = null;
  });
  return pendingAsk;
}

/** The stored session, or a new one after asking the user for a name. */
export async function ensureSession() {
  const session = loadSession();
  showIdentity(session);
  return session || askForName();
}

/**
 * The stored token was refused. If it merely expired, the server renews it for the same
 * user (same id, so earlier messages stay this user's); if it is not ours any more (the
 * server's key changed) or expired too long ago, forget it and ask for a name again.
 */
export async function renewSession(beforeAsking = () => {}) {
  const stored = loadSession();
  if (stored) {
    const { status, data } = await api("/api/session/renew", { method: "POST", token: stored.token })
      .catch(() => ({ status: 0, data: null }));
    if (status === 200 && data && data.token) {
      saveSession(data);
      return data;
    }
  }
  localStorage.removeItem(STORAGE_KEY);
  showIdentity(null);
  beforeAsking();
  return askForName();
}

/** Let the user pick another name; resolves to the new session, or null if they cancelled. */
export function changeName() {
  const session = loadSession();
  return askForName({ current: session ? session.user.name : null });
}

function runNameForm(current) {
  const section = document.getElementById("identity");
  const form = document.getElementById("name-form");
  const input = document.getElementById("name");
  const error = document.getElementById("name-error");
  const cancel = document.getElementById("name-cancel");
  const submit = form.querySelector("button[type=submit]");
  document.getElementById("identity-title").textContent = current ? "Change your name" : "Choose a display name";
  input.value = current || "";
  cancel.hidden = !current;
  showText(error, "");
  section.hidden = false;
  input.focus();
  input.select();

  return new Promise((resolve) => {
    function finish(session) {
      form.removeEventListener("submit", onSubmit);
      cancel.removeEventListener("click", onCancel);
      section.hidden = true;
      resolve(session);
    }
    function onCancel() {
      finish(null);
    }
    async function onSubmit(event) {
      event.preventDefault();
      const name = input.value.trim();
      // Only the obvious is checked here; the server owns the rule and its message is shown as it comes.
      if (!name) return showText(error, "Please enter a name.");
      submit.disabled = true;
      try {
        const session = await createSession(name);
        saveSession(session);
        finish(session);
      } catch (err) {
        showText(error, err.code ? err.message : "Could not reach the server.");
      } finally {
        submit.disabled = false;
      }
    }
    form.addEventListener("submit", onSubmit);
    cancel.addEventListener("click", onCancel);
  });
}
