// track(): tracker.js's batching, retry queue and limits, and consent, over a local HTTP server.
import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { batches, createClient, MAX_BATCH_BYTES, QUEUE_LIMIT } from "../dist/index.js";
import { eventually, sleep, startServer, stored } from "./server.js";

const CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
const GRANTED = { "user-agent": CHROME, cookie: "tl_vid=v:1:s; tl_consent=analytics.personalization" };
let server;
const clients = [];

function client(headers = GRANTED, options = {}) {
  const made = createClient({ endpoint: server.endpoint, request: { headers }, flushDelayMs: 50, firstBackoffMs: 40, ...options });
  clients.push(made);
  return made;
}
const sentEvents = () => server.of("track_events").flatMap((r) => r.body.variables.events);

before(async () => { server = await startServer(); });
after(() => server.close());
beforeEach(() => {
  while (clients.length) clients.pop().close();
  server.requests.length = 0;
  server.handlers.track_events = stored;
});

test("20 events go at once in one batch; fewer wait for the delay", async () => {
  const c = client();
  c.track(Array.from({ length: 19 }, (_, i) => ({ type: "scroll_depth", depth: 25, n: i })));
  await sleep(10);
  assert.equal(server.of("track_events").length, 0);
  c.track({ type: "page_view", url: "/" });
  await eventually(() => server.of("track_events").length === 1);
  assert.equal(sentEvents().length, 20);
  const event = sentEvents()[19];
  assert.equal(event.type, "page_view");
  assert.match(event.id, /^[0-9a-f-]{36}$/);
  assert.ok(Math.abs(event.ts - Date.now()) < 5000);
  c.track({ type: "page_view" });
  await eventually(() => c.stats().sent === 21); // after flushDelayMs
  assert.equal(server.of("track_events")[1].body.variables.events.length, 1);
  assert.deepEqual(c.stats(), { queued: 0, dropped: 0, sent: 21 });
});

test("batches hold at most 100 events and under 60,000 bytes, in order", async () => {
  const c = client(GRANTED, { flushSize: 1000 });
  c.track(Array.from({ length: 250 }, (_, i) => ({ type: "click", target: "t", n: i })));
  await c.flush();
  const sizes = server.of("track_events").map((r) => r.body.variables.events.length);
  assert.ok(sizes.every((n) => n <= 100), String(sizes));
  assert.deepEqual(sentEvents().map((e) => e.n), Array.from({ length: 250 }, (_, i) => i));
  const big = Array.from({ length: 30 }, (_, i) => ({ type: "search", id: String(i), ts: 0, query: "x".repeat(3000) }));
  const split = batches(big);
  assert.ok(split.length > 1 && split.every((b) => JSON.stringify({ events: b }).length < MAX_BATCH_BYTES));
  assert.deepEqual(batches([{ type: "search", id: "1", ts: 0, query: "x".repeat(70000) }]), []); // one event over the limit is dropped
});

test("429, 5xx, rate_limited and a lost connection are retried with backoff, once stored; 400 and 403 never", async () => {
  const c = client();
  let calls = 0;
  server.handlers.track_events = (entry) => {
    calls += 1;
    if (calls === 1) return { status: 503, body: {} };
    if (calls === 2) return "reset";
    if (calls === 3) return { body: { data: { trackEvents: { accepted: 1, stored: 0, duplicates: 0, errors: [{ code: "rate_limited", message: "retry in a minute", index: null }] } } } };
    return stored(entry);
  };
  c.track({ type: "page_view" });
  await c.flush();
  assert.equal(c.stats().queued, 1); // waiting for the retry
  await eventually(() => c.stats().sent === 1, 5000);
  const ids = server.of("track_events").map((r) => r.body.variables.events[0].id);
  assert.equal(ids.length, 4);
  assert.equal(new Set(ids).size, 1); // the same event, so the server counts it once
  // Retried after 1x, 2x, 4x the first backoff (40 ms here; 5 s, doubling up to 5 minutes, by default).
  const at = server.of("track_events").map((r) => r.at);
  assert.ok(at[1] - at[0] >= 35 && at[2] - at[1] >= 75 && at[3] - at[2] >= 150, String(at.map((t) => t - at[0])));
  assert.equal(c.stats().queued, 0);

  server.requests.length = 0;
  server.handlers.track_events = () => ({ status: 403, body: { errors: [{ message: "cross site", extensions: { code: "CROSS_SITE" } }] } });
  c.track({ type: "page_view" });
  await c.flush();
  await sleep(150);
  assert.equal(server.of("track_events").length, 1); // not retried
  assert.equal(c.stats().queued, 0);
});

test("the retry queue keeps the newest 200 events and counts the ones it drops", async () => {
  server.handlers.track_events = () => ({ status: 500, body: {} });
  const c = client(GRANTED, { flushSize: 1000, firstBackoffMs: 60_000 });
  c.track(Array.from({ length: 250 }, (_, i) => ({ type: "click", target: "t", n: i })));
  await c.flush();
  assert.deepEqual(c.stats(), { queued: QUEUE_LIMIT, dropped: 50, sent: 0 });
  server.handlers.track_events = stored;
  server.requests.length = 0;
  await c.flush();
  assert.deepEqual(sentEvents().map((e) => e.n), Array.from({ length: 200 }, (_, i) => i + 50)); // oldest dropped
});

test("declined, undecided and GPC or DNT visitors send nothing", async () => {
  for (const headers of [
    { "user-agent": CHROME, cookie: "tl_consent=none" },
    { "user-agent": CHROME },
    { ...GRANTED, "sec-gpc": "1" },
    { ...GRANTED, dnt: "1" },
  ]) {
    const c = client(headers);
    const answer = c.track({ type: "page_view" });
    assert.equal(answer.ok, false);
    assert.equal(answer.error.kind, "consent");
    assert.equal(c.impression({ block: "p1", variant: "a" }, 1.2).ok, false);
    await c.flush();
  }
  const browser = client({ "user-agent": CHROME, cookie: GRANTED.cookie }, { globalPrivacyControl: true });
  assert.equal(browser.track({ type: "page_view" }).error.code, "opted_out_by_browser");
  await sleep(120);
  assert.equal(server.requests.length, 0);
});

test("withdrawing consent forgets what waits", async () => {
  server.handlers.set_consent = () => ({ headers: { "Set-Cookie": "tl_vid=; Max-Age=0; Path=/" }, body: { data: { setConsent: { granted: [], reason: null, message: null, errors: [] } } } });
  const c = client(GRANTED, { flushDelayMs: 60_000 });
  c.track([{ type: "page_view" }, { type: "click", target: "x" }]);
  assert.equal(c.stats().queued, 2);
  await c.setConsent({ analytics: false, personalization: false });
  assert.equal(c.stats().queued, 0);
  await c.flush();
  assert.equal(server.of("track_events").length, 0);
  assert.equal(server.of("set_consent")[0].headers.cookie, "tl_vid=v:1:s; tl_consent=analytics.personalization");
});

test("impressions and the first click per block carry the block's decision", async () => {
  const c = client(GRANTED, { flushDelayMs: 60_000 });
  const decision = { block: "p1", variant: "electronics", experiment: "hero-test", arm: "b", holdout: false };
  c.impression(decision, 1.4, 3);
  c.click("cta", decision);
  c.click("cta", decision);
  c.impression({ block: "p2", variant: "fallback", experiment: null, arm: null });
  await c.flush();
  const [impression, first, second, plain] = sentEvents();
  assert.deepEqual({ ...impression, id: 0, ts: 0 }, { type: "impression", id: 0, ts: 0, block: "p1", variant: "electronics", experiment: "hero-test", arm: "b", page: 3, seconds: 1.4 });
  assert.deepEqual([first.block, first.variant, first.arm, first.target], ["p1", "electronics", "b", "cta"]);
  assert.equal(second.block, undefined);
  assert.deepEqual(Object.keys(plain).sort(), ["block", "id", "ts", "type", "variant"]); // no nulls, no holdout flag
});
