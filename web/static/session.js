// Who the user is: a display name and the token the server issued for it,
// kept together in localStorage so every page and tab shares them.

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

export function clearSession() {
  localStorage.removeItem(STORAGE_KEY);
  showIdentity(null);
}

function saveSession(session) {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  showIdentity(session);
}

/** Fill the "Signed in as" header line. */
export function showIdentity(session) {
  const line = document.getElementById("whoami");
  if (!line) return;
  document.getElementById("whoami-name").textContent = session ? session.user.name : "";
  line.hidden = !session;
}

/** JSON request to the server's API; resolves to `{status, data}`, data null if the body is not JSON. */
export async function api(path, { method = "GET", body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Non-JSON answers (a proxy's error page) are reported by status alone.
  }
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
 * Only the obvious is checked here; the server owns the rule (length,
 * control characters) and its invalid_name message is shown as it comes.
 */
function nameProblem(raw) {
  return raw.trim() ? "" : "Please enter a name.";
}

async function createSession(name) {
  const { status, data } = await api("/api/session", { method: "POST", body: { name } });
  if (status === 200 && data && data.token) return data;
  throw new Error(apiErrorMessage(data, `The server answered ${status}.`));
}

/**
 * Show the name form and resolve with a fresh session once the server
 * accepted the name. Only one form is open at a time: concurrent callers
 * share the same answer.
 */
let pendingAsk = null;
export function askForName() {
  if (!pendingAsk) {
    pendingAsk = runNameForm().finally(() => {
      pendingAsk = null;
    });
  }
  return pendingAsk;
}

/** Forget the stored session (expired token, or a new name) and ask for a name again. */
export function renewSession() {
  clearSession();
  return askForName();
}

function runNameForm() {
  const section = document.getElementById("identity");
  const form = document.getElementById("name-form");
  const input = document.getElementById("name");
  const error = document.getElementById("name-error");
  section.hidden = false;
  input.focus();

  return new Promise((resolve) => {
    async function onSubmit(event) {
      event.preventDefault();
      const problem = nameProblem(input.value);
      if (problem) return showText(error, problem);
      form.querySelector("button").disabled = true;
      try {
        const session = await createSession(input.value.trim());
        saveSession(session);
        form.removeEventListener("submit", onSubmit);
        error.hidden = true;
        section.hidden = true;
        resolve(session);
      } catch (err) {
        showText(error, err.message || "Could not reach the server.");
      } finally {
        form.querySelector("button").disabled = false;
      }
    }
    form.addEventListener("submit", onSubmit);
  });
}

/** The stored session, or a new one after asking the user for a name. */
export async function ensureSession() {
  const session = loadSession();
  if (session) {
    showIdentity(session);
    return session;
  }
  return askForName();
}
