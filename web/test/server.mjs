// A real chat server process for the client tests: `python -m chatserver` on a
// free loopback port, started from the repository root with the test key.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789";
export const API_KEY = "test-api-key-0123456789";
// `make test` runs these through pytest, which passes its own interpreter.
const PYTHON = process.env.CHAT_TEST_PYTHON || `${ROOT}.venv/bin/python`;

async function freePort() {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

export class ServerProcess {
  constructor(env = {}) {
    this.env = env;
    this.port = null;
    this.proc = null;
    this.output = "";
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Start (again, on the same port after `stop`) and wait until /healthz answers. */
  async start() {
    this.port ??= await freePort();
    const env = { ...process.env, SECRET_KEY, API_KEY, RATE_LIMIT: "100000", ...this.env };
    delete env.REDIS_URL;
    this.proc = spawn(PYTHON, ["-m", "chatserver", "--host", "127.0.0.1", "--port", String(this.port)],
      { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [this.proc.stdout, this.proc.stderr]) {
      stream.on("data", (chunk) => { this.output += chunk; });
    }
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`server exited:\n${this.output}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return this;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`server did not become healthy:\n${this.output}`);
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    const exited = once(this.proc, "exit");
    this.proc.kill("SIGTERM");
    await exited;
  }

  /** Store a message as a backend would (`POST /api/rooms/{room}/messages`). */
  async publish(room, text) {
    const response = await fetch(`${this.url}/api/rooms/${room}/messages`, {
      method: "POST",
      headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ text }),
    });
    if (response.status !== 201) throw new Error(`publish answered ${response.status}`);
    return response.json();
  }

  /** POST a backend route (`/api/users/...`) with the API key; resolves to the status. */
  async backend(path, body) {
    const response = await fetch(`${this.url}${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (response.status !== 202) throw new Error(`${path} answered ${response.status}`);
    return response.status;
  }

  /** What the server holds for `room`, oldest first (up to 100). */
  async history(room, token) {
    const response = await fetch(`${this.url}/api/rooms/${room}/messages?limit=100`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    return (await response.json()).messages;
  }
}
