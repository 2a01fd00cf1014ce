// A real local HTTP server standing in for Tailored's /graphql/ endpoint: it records every
// request (headers and JSON body) and answers each persisted operation id with a handler the
// test sets, so the client is exercised over the network, never with a mocked fetch.
import { createServer } from "node:http";

export async function startServer() {
  const requests = [];
  const handlers = {};
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk) => (raw += chunk));
    req.on("end", () => {
      let body = null;
      try { body = JSON.parse(raw); } catch { /* recorded as null */ }
      const entry = { method: req.method, url: req.url, headers: req.headers, body, at: Date.now() };
      requests.push(entry);
      const handler = handlers[body?.id] ?? (() => ({ status: 400, body: { errors: [{ message: "Unknown persisted operation.", extensions: { code: "PERSISTED_QUERY_NOT_FOUND" } }] } }));
      const answer = handler(entry, requests.filter((r) => r.body?.id === body?.id).length);
      if (answer === "reset") return req.socket.destroy();
      res.writeHead(answer.status ?? 200, { "Content-Type": "application/json", ...(answer.headers ?? {}) });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    endpoint: `http://127.0.0.1:${port}/graphql/`,
    requests,
    handlers,
    of: (id) => requests.filter((r) => r.body?.id === id),
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

/** trackEvents' answer for a batch: every event stored. */
export function stored(entry) {
  const n = entry.body.variables.events.length;
  return { body: { data: { trackEvents: { accepted: n, stored: n, duplicates: 0, errors: [] } } } };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait until `check()` holds (polling), at most `ms`. */
export async function eventually(check, ms = 3000) {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error("condition not reached in time");
    await sleep(10);
  }
}
