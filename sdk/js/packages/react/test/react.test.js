// @tailored/react: server rendering from the server's answer (no request, no flicker), the
// impression rule, and a block's impression reaching a real local server through the client.
import assert from "node:assert/strict";
import { createElement as h } from "react";
import { renderToString } from "react-dom/server";
import { after, before, test } from "node:test";

import { createClient } from "@tailored/client";
import { TailoredBlock, TailoredProvider, usePersonalizedPage, useTrack, watchImpression } from "../dist/index.js";
import { eventually, sleep, startServer, stored } from "../../client/test/server.js";

const CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
const DECISION = { block: "p1", variant: "electronics", experiment: null, arm: null, holdout: false };
const PAGE = { page: { id: "3", title: "Home", body: [{ id: "p1", blockType: "PersonalizedBlock", variant: "electronics", blocks: [{ blockType: "HeroBlock", heading: "Gadgets for you" }] }] }, decisions: [DECISION], setCookies: [] };
let server;

before(async () => { server = await startServer(); server.handlers.track_events = stored; });
after(() => server.close());

function Home() {
  const { page, decisions, loading } = usePersonalizedPage("/");
  if (loading) return h("p", null, "loading");
  return h("main", null, page.body.map((block) => h(TailoredBlock, { key: block.id, decision: decisions.find((d) => d.block === block.id) },
    block.blocks.map((child, i) => h("h1", { key: i }, child.heading)))));
}

test("the server's answer renders in the first HTML, with the block's data-tl-* attributes, without a request", () => {
  const client = createClient({ endpoint: server.endpoint, request: { headers: { "user-agent": CHROME } } });
  const html = renderToString(h(TailoredProvider, { client, pages: { "/": PAGE } }, h(Home)));
  assert.match(html, /<div data-tl-block-id="p1" data-tl-variant="electronics"><h1>Gadgets for you<\/h1><\/div>/);
  assert.equal(server.requests.length, 0);
  assert.match(renderToString(h(TailoredProvider, { client }, h(Home))), /loading/); // not resolved on the server: fetched in the browser
});

test("useTrack without a client answers with a typed error", () => {
  function Tracks() {
    const answer = useTrack()({ type: "page_view" });
    return h("span", null, answer.ok ? "sent" : answer.error.code);
  }
  assert.match(renderToString(h(TailoredProvider, { client: null }, h(Tracks))), /no_client/);
});

function fakeObserver() {
  const made = { callback: null, disconnected: false };
  const factory = (callback) => {
    made.callback = callback;
    return { observe() {}, disconnect() { made.disconnected = true; } };
  };
  return { made, factory };
}

test("an impression needs half the block in view for a second at a stretch, and counts once", async () => {
  const { made, factory } = fakeObserver();
  const seen = [];
  watchImpression({}, (seconds) => seen.push(seconds), factory);
  made.callback([{ intersectionRatio: 0.6 }]);
  await sleep(500);
  made.callback([{ intersectionRatio: 0.2 }]); // scrolled away before a second
  await sleep(700);
  assert.deepEqual(seen, []);
  made.callback([{ intersectionRatio: 0.9 }]);
  await sleep(1100);
  assert.equal(seen.length, 1);
  assert.ok(seen[0] >= 1 && seen[0] < 1.5, String(seen[0]));
  assert.equal(made.disconnected, true);
  made.callback([{ intersectionRatio: 0.9 }]);
  await sleep(1100);
  assert.equal(seen.length, 1);
});

test("a seen block's impression reaches the server with its decision", async () => {
  const client = createClient({ endpoint: server.endpoint, request: { headers: { "user-agent": CHROME, cookie: "tl_vid=v:1:s; tl_consent=analytics" } }, flushDelayMs: 20 });
  const { made, factory } = fakeObserver();
  watchImpression({}, (seconds) => client.impression(DECISION, seconds), factory);
  made.callback([{ intersectionRatio: 1 }]);
  await eventually(() => server.of("track_events").length === 1, 4000);
  const [event] = server.of("track_events")[0].body.variables.events;
  assert.deepEqual([event.type, event.block, event.variant], ["impression", "p1", "electronics"]);
  client.close();
});
