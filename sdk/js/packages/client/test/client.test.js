// @tailored/client against a local HTTP server: persisted operations, visitor forwarding and
// server-to-server headers, decisions, typed errors.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { after, before, beforeEach, test } from "node:test";

import { createClient, OPERATIONS } from "../dist/index.js";
import { startServer } from "./server.js";

const CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
const VID = "0123456789abcdef0123456789abcdef";
const HOMEPAGE = {
  page: { id: "3", title: "Home", body: [
    { id: "b1", blockType: "HeroBlock", heading: "Welcome" },
    { id: "p1", blockType: "PersonalizedBlock", variant: "electronics", variantLabel: "Electronics fans", blocks: [{ id: "c1", blockType: "ProductCarouselBlock", heading: "For you" }] },
  ] },
};
const DECISIONS = [{ block: "p1", variant: "electronics", experiment: null, arm: null, holdout: false }];
let server;

before(async () => { server = await startServer(); });
after(() => server.close());
beforeEach(() => {
  server.requests.length = 0;
  for (const key of Object.keys(server.handlers)) delete server.handlers[key];
});

test("every operation the client speaks is a committed document in graphql/operations/", () => {
  const committed = readdirSync(new URL("../../../../../graphql/operations/", import.meta.url)).filter((f) => f.endsWith(".graphql")).map((f) => f.slice(0, -8));
  for (const id of Object.values(OPERATIONS)) assert.ok(committed.includes(id), `${id} is not in graphql/operations/`);
});

test("getPage('/') posts the persisted homepage operation with the visitor's cookies, User-Agent and privacy signal", async () => {
  server.handlers.homepage = () => ({ body: { data: HOMEPAGE, extensions: { decisions: DECISIONS } } });
  const client = createClient({
    endpoint: server.endpoint,
    request: { headers: { cookie: `sessionid=secret; tl_vid=${VID}:1:sig; tl_consent=analytics.personalization; other=1`, "user-agent": CHROME, dnt: "1" } },
  });
  const answer = await client.getPage("/");
  assert.equal(answer.ok, true);
  assert.equal(answer.value.page.body[1].variant, "electronics");
  assert.deepEqual(answer.value.decisions, DECISIONS);
  const [sent] = server.of("homepage");
  assert.deepEqual(sent.body, { id: "homepage" });
  assert.equal(sent.headers.cookie, `tl_vid=${VID}:1:sig; tl_consent=analytics.personalization`); // only Tailored's cookies
  assert.equal(sent.headers["user-agent"], CHROME);
  assert.equal(sent.headers.dnt, "1");
  assert.equal(client.allowsEvents(), false); // DNT overrides the stored answer

  const withOwnCategory = createClient({ endpoint: server.endpoint, request: { headers: { cookie: "tl_consent=analytics.marketing", "user-agent": CHROME } } });
  await withOwnCategory.getPage("/");
  assert.equal(server.of("homepage").at(-1).headers.cookie, "tl_consent=analytics.marketing"); // forwarded unchanged
  assert.equal(withOwnCategory.allowsEvents(), true);
});

test("getPage merges the homepage's product rows by block id, and other paths use the assignments operation", async () => {
  server.handlers.homepage = () => ({ body: { data: HOMEPAGE, extensions: { decisions: DECISIONS } } });
  server.handlers.homepage_products = () => ({ body: { data: { page: { id: "3", body: [{ id: "p1", variant: "electronics", blocks: [{ id: "c1", products: [{ id: "7", title: "Laptop" }] }] }] } } } });
  server.handlers.assignments = (entry) => ({ body: { data: { visitor: null, page: { body: [] } }, extensions: { decisions: [] } } });
  const client = createClient({ endpoint: server.endpoint, request: { headers: { "user-agent": CHROME } } });
  const home = await client.getPage("/", { products: true });
  assert.deepEqual(home.value.page.body[1].blocks[0].products, [{ id: "7", title: "Laptop" }]);
  const landing = await client.getPage("/spring/");
  assert.equal(landing.ok, true);
  assert.deepEqual(server.of("assignments")[0].body, { id: "assignments", variables: { urlPath: "/spring/" } });
  assert.equal(server.requests.some((r) => r.headers.cookie), false); // an undecided visitor has no cookie to send
});

test("server to server: the API key, the visitor id and X-Tailored-Context with consent and gpc", async () => {
  server.handlers.visitor = () => ({ body: { data: { visitor: { id: VID, segments: ["electronics-fans"] } } } });
  const client = createClient({
    endpoint: server.endpoint, apiKey: "k".repeat(40), visitorId: VID,
    context: { user_agent: CHROME, country: "GB", url: "https://shop.example/" },
    consent: { analytics: true, personalization: true },
  });
  const visitor = await client.getVisitor();
  assert.deepEqual(visitor.value.segments, ["electronics-fans"]);
  const [sent] = server.of("visitor");
  assert.equal(sent.headers["x-tailored-key"], "k".repeat(40));
  assert.equal(sent.headers["x-tailored-visitor"], VID);
  assert.deepEqual(JSON.parse(sent.headers["x-tailored-context"]), { user_agent: CHROME, country: "GB", url: "https://shop.example/", consent: { analytics: true, personalization: true } });
  assert.equal(sent.headers.cookie, undefined);

  const gpc = createClient({ endpoint: server.endpoint, apiKey: "k".repeat(40), visitorId: VID, consent: { analytics: true, personalization: true, optedOutByBrowser: true } });
  await gpc.getVisitor();
  const last = server.of("visitor").at(-1);
  assert.equal(last.headers["x-tailored-visitor"], undefined); // no id under GPC
  assert.equal(JSON.parse(last.headers["x-tailored-context"]).gpc, true);
  const bad = await createClient({ endpoint: server.endpoint, apiKey: "k", visitorId: "not-an-id" }).getVisitor();
  assert.deepEqual([bad.ok, bad.error.kind, bad.error.code], [false, "invalid", "invalid_visitor_id"]);
});

test("errors are typed values: GraphQL codes, HTTP statuses, the network, bad input", async () => {
  const client = createClient({ endpoint: server.endpoint, request: { headers: { "user-agent": CHROME } } });
  server.handlers.homepage = () => ({ status: 400, body: { errors: [{ message: "Query too costly", extensions: { code: "QUERY_TOO_COSTLY" } }] } });
  let answer = await client.getPage("/");
  assert.deepEqual({ ...answer.error, message: undefined }, { kind: "graphql", code: "QUERY_TOO_COSTLY", status: 400, retryable: false, message: undefined });
  server.handlers.homepage = () => ({ status: 503, body: {} });
  answer = await client.getPage("/");
  assert.deepEqual([answer.error.kind, answer.error.code, answer.error.retryable], ["http", "http_503", true]);
  server.handlers.homepage = () => "reset";
  answer = await client.getPage("/");
  assert.deepEqual([answer.error.kind, answer.error.code, answer.error.retryable], ["network", "network_error", true]);
  answer = await client.getPage("relative");
  assert.deepEqual([answer.error.kind, answer.error.code], ["invalid", "invalid_path"]);
  const closed = await createClient({ endpoint: "http://127.0.0.1:9/graphql/" }).getPage("/");
  assert.equal(closed.error.kind, "network");
});

test("setConsent forwards the answer, keeps the cookies the site set and follows the answer recorded", async () => {
  server.handlers.set_consent = (entry) => ({
    headers: { "Set-Cookie": [`tl_consent=analytics.personalization; Path=/; Max-Age=15552000`, `tl_vid=${VID}:1:sig; HttpOnly; Path=/`] },
    body: { data: { setConsent: { granted: ["analytics", "personalization"], reason: null, message: null, errors: [] } } },
  });
  server.handlers.homepage = () => ({ body: { data: HOMEPAGE } });
  const client = createClient({ endpoint: server.endpoint, request: { headers: { "user-agent": CHROME } } });
  const answer = await client.setConsent({ analytics: true, personalization: true });
  assert.deepEqual(server.of("set_consent")[0].body.variables, { analytics: true, personalization: true });
  assert.equal(answer.value.setCookies.length, 2);
  assert.equal(client.allowsProfile(), true);
  await client.getPage("/");
  assert.equal(server.of("homepage")[0].headers.cookie, `tl_vid=${VID}:1:sig; tl_consent=analytics.personalization`);

  server.handlers.set_consent = () => ({ body: { data: { setConsent: { granted: [], reason: "opted_out_by_browser", message: "Your browser sends a privacy signal", errors: [] } } } });
  const gpc = createClient({ endpoint: server.endpoint, request: { headers: { "user-agent": CHROME, "sec-gpc": "1" } } });
  const declined = await gpc.setConsent({ analytics: true, personalization: true });
  assert.equal(declined.value.reason, "opted_out_by_browser");
  assert.equal(gpc.allowsEvents(), false);
});
