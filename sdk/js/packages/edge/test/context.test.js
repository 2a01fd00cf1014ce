// Context facts from a request, the audience key and decisions at the edge.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  audienceKeyOf, CLOUDFRONT, compileSegments, contextFromRequest, decideAtEdge, deviceClass,
  hostClass, needsOrigin, parseAudienceKey, queryParameters, unknownAtEdge, utmValue,
} from "../dist/index.js";

const USER_AGENTS = JSON.parse(readFileSync(new URL("./fixtures/user_agents.json", import.meta.url), "utf8"));
// ua-parser knows some crawlers by name only; the proxies' expressions (and so the edge) see a desktop.
const KNOWN_DIFFERENCES = new Map([["facebookexternalhit", "a crawler ua-parser names, with no bot word in it"]]);
// Saturday 5 December 2026, 09:30 UTC.
const NOW = Date.UTC(2026, 11, 5, 9, 30);

function request(url, headers = {}) {
  return new Request(url, { headers });
}

test("device classes agree with the app's (ua-parser) on the fixture's User-Agents", () => {
  for (const { user_agent: ua, device } of USER_AGENTS.cases) {
    const known = [...KNOWN_DIFFERENCES.keys()].find((word) => ua.includes(word));
    if (known) assert.notEqual(deviceClass(ua), device, `${known} is no longer a difference: drop it`);
    else assert.equal(deviceClass(ua), device, ua);
  }
});

test("the audience key is device.country.daypart.weekday in the given zone", () => {
  const iphone = USER_AGENTS.cases.find((c) => c.user_agent.includes("iPhone")).user_agent;
  const req = request("https://shop.example/", { "User-Agent": iphone, "CF-IPCountry": "gb" });
  assert.equal(audienceKeyOf(req, { now: NOW, timeZone: "Europe/London" }), "mobile.GB.morning.sat");
  assert.equal(audienceKeyOf(req, { now: NOW, timeZone: "America/Los_Angeles" }), "mobile.GB.night.sat");
  const unknown = request("https://shop.example/", { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)", "CF-IPCountry": "XX" });
  assert.equal(audienceKeyOf(unknown, { now: NOW }), "desktop.-.morning.sat");
  assert.deepEqual(parseAudienceKey("mobile.GB.morning.sat"), { device: "mobile", country: "GB", daypart: "morning", weekday: "sat" });
  for (const bad of ["", "mobile.GB.morning", "phone.GB.morning.sat", "mobile.gb.morning.sat", "x".repeat(50)]) assert.equal(parseAudienceKey(bad), null, bad);
});

test("geo comes from the configured CDN headers only, never guessed", () => {
  const headers = { "CloudFront-Viewer-Country": "US", "CloudFront-Viewer-Country-Region": "CA", "CloudFront-Viewer-City": "San%20Jos%C3%A9", "CF-IPCountry": "FR" };
  const context = contextFromRequest(request("https://shop.example/", headers), { geo: CLOUDFRONT, now: NOW });
  assert.deepEqual([context.country, context.region, context.city], ["US", "US-CA", "San José"]);
  const mismatched = contextFromRequest(request("https://shop.example/", { "CF-IPCountry": "UK", "CF-Region-Code": "US-CA" }), { geo: { country: "CF-IPCountry", region: "CF-Region-Code" }, now: NOW });
  assert.deepEqual([mismatched.country, mismatched.region], ["GB", null]);
});

test("place facts: path, bounded query, referrer, landing page and the same-site referrer's parameters", () => {
  const arriving = contextFromRequest(request("https://www.shop.example/offers/?promo=spring&promo=x&a%20b=1&utm_campaign=Summer%20Sale%202026", { Referer: "https://www.google.co.uk/search?q=x" }), { ownHosts: ["shop.example"], now: NOW });
  assert.equal(arriving.path, "/offers/");
  assert.deepEqual(arriving.query, { promo: "spring", utm_campaign: "Summer Sale 2026" });
  assert.equal(arriving.utm_campaign, "summer-sale-2026");
  assert.equal(arriving.referrer_class, "campaign");
  assert.equal(arriving.referrer_host, "google.co.uk");
  assert.equal(arriving.landing_page, "/offers/");
  const next = contextFromRequest(request("https://shop.example/products/", { Referer: "https://shop.example/offers/?promo=spring" }), { ownHosts: ["shop.example"], now: NOW });
  assert.equal(next.landing_page, null);
  assert.equal(next.referrer_class, null);
  assert.deepEqual(next.session_query, { promo: "spring" });
  const direct = contextFromRequest(request("https://shop.example/"), { now: NOW });
  assert.equal(direct.referrer_class, "direct");
  assert.deepEqual([hostClass("l.facebook.com"), hostClass("www.bing.de"), hostClass("mail.example.org"), hostClass("news.example")], ["social", "search", "email", "other"]);
  assert.equal(utmValue("Été  -- 2026!"), "ete-2026");
  assert.equal(Object.keys(queryParameters(Array.from({ length: 50 }, (_, i) => `p${i}=${i}`).join("&"))).length, 20);
});

const HOMEPAGE_HERO = {
  id: "hero",
  variants: [
    { key: "mobile-morning", devices: ["mobile"], dayparts: ["morning"] },
    { key: "uk-campaign", segments: ["uk-spring"] },
    { key: "fans", segments: ["electronics-fans"] },
  ],
};

test("a block whose choice reads only request facts is decided at the edge, the same for every profile-less visitor", () => {
  const segments = compileSegments({
    "uk-spring": { all: [{ field: "context.country", op: "eq", value: "GB" }, { field: "context.query.promo", op: "eq", value: "spring" }] },
    "electronics-fans": { count: { event: "page_view", category: "electronics", within_hours: 24 }, op: "gte", value: 3 },
  });
  const desktop = contextFromRequest(request("https://shop.example/?promo=spring", { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)", "CF-IPCountry": "GB" }), { now: NOW });
  assert.deepEqual(decideAtEdge(HOMEPAGE_HERO, segments, desktop), { decided: true, block: "hero", variant: "uk-campaign", index: 1 });
  const iphone = USER_AGENTS.cases.find((c) => c.user_agent.includes("iPhone")).user_agent;
  const mobile = contextFromRequest(request("https://shop.example/", { "User-Agent": iphone }), { now: NOW, timeZone: "Europe/London" });
  assert.equal(decideAtEdge(HOMEPAGE_HERO, segments, mobile).variant, "mobile-morning");
  const elsewhere = contextFromRequest(request("https://shop.example/", { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)" }), { now: NOW });
  assert.equal(decideAtEdge(HOMEPAGE_HERO, segments, elsewhere).variant, "fallback"); // an empty profile is no fan
  assert.deepEqual(decideAtEdge(HOMEPAGE_HERO, segments, elsewhere, { originVisitor: true }), { decided: false, block: "hero", reason: "origin_visitor" });
});

test("facts the edge cannot establish leave the decision to the origin", () => {
  const segments = compileSegments({ chrome: { field: "context.browser", op: "eq", value: "chrome" }, members: { field: "user.logged_in", op: "eq", value: true } });
  const block = { id: "b", variants: [{ key: "a", segments: ["chrome", "members"] }, { key: "w", weather: ["rain"] }] };
  assert.deepEqual(decideAtEdge(block, segments, {}), { decided: false, block: "b", reason: "unknown_facts", facts: ["browser", "user.logged_in", "weather"] });
  assert.deepEqual(unknownAtEdge(["device", "query.promo", "visit.query.promo", "profile", "locale"]), ["locale"]);
});

test("consenting and logged-in visitors are the origin's; a privacy signal keeps a visitor profile-less", () => {
  const cookie = (value, extra = {}) => request("https://shop.example/", { Cookie: value, ...extra });
  assert.equal(needsOrigin(cookie("tl_consent=analytics.personalization")), true);
  assert.equal(needsOrigin(cookie("tl_consent=analytics")), true); // in experiments: measured, not targeted
  assert.equal(needsOrigin(cookie("tl_consent=marketing")), false);
  assert.equal(needsOrigin(cookie("tl_consent=none")), false);
  assert.equal(needsOrigin(cookie("tl_consent=analytics.personalization", { "Sec-GPC": "1" })), false);
  assert.equal(needsOrigin(cookie("sessionid=abc; tl_consent=none")), true);
});

test("declared CRM traits compile with their kind's operators and read the empty profile", async () => {
  const { compileRule, RuleError } = await import("../dist/index.js");
  const traits = { plan: { kind: "choice", choices: ["gold", "free"] }, seats: "number" };
  assert.equal(compileRule({ field: "trait.plan", op: "eq", value: "gold" }, { traits }).matches({}), false);
  assert.equal(compileRule({ field: "trait.seats", op: "present", value: false }, { traits }).readsProfile, true);
  assert.throws(() => compileRule({ field: "trait.plan", op: "ne", value: "gold" }, { traits }), (e) => e instanceof RuleError && e.path === "$.op");
  assert.throws(() => compileRule({ field: "trait.tier", op: "eq", value: "x" }, { traits }), (e) => e.path === "$.field" && /no trait 'tier' is declared/.test(e.message));
});

test("`matches` patterns answer as Python's re.search does (fixtures/patterns.json, from Python)", async () => {
  const { pythonRegExp } = await import("../dist/index.js");
  const { cases } = JSON.parse(readFileSync(new URL("./fixtures/patterns.json", import.meta.url), "utf8"));
  for (const { pattern, text, matches } of cases) assert.equal(pythonRegExp(pattern).test(text), matches, `${pattern} on ${JSON.stringify(text)}`);
});
