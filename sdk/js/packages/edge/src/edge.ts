// What a CDN worker decides without calling the origin: the audience key of a request, and the
// variant of a block whose choice reads only what the edge knows, for visitors whose profile is
// empty (no personalization consent, or a browser privacy signal).

import { audienceKey, audienceOf, matchingSegments, PROFILE_FACT, QUERY_FACT, ruleFacts, variantFacts } from "./audience.js";
import { compileRule, type CompiledRule, type CompileOptions } from "./rules.js";
import { chooseVariant, FALLBACK, type VariantTags } from "./selection.js";
import { contextFromRequest, type ContextOptions, type RequestLike } from "./request.js";
import type { Context } from "./types.js";

/** Facts `contextFromRequest` establishes as the app does (named as audience.ruleFacts names them). */
export const EDGE_FACTS: ReadonlySet<string> = new Set([
  "device", "country", "region", "city", "daypart", "weekday", "local_hour", "local_time", "local_minute",
  "path", "utm_source", "utm_medium", "utm_campaign", "referrer", "referrer_host", "referrer_class", "landing_page",
  PROFILE_FACT, // the empty profile of a visitor without personalization consent
]);
const EDGE_FAMILIES = [QUERY_FACT, "visit.query."];

/** The facts in `facts` the edge cannot establish (browser, os, locale, weather, user.*, site.*, unknown...). */
export function unknownAtEdge(facts: Iterable<string>): string[] {
  return [...facts].filter((fact) => !EDGE_FACTS.has(fact) && !EDGE_FAMILIES.some((prefix) => fact.startsWith(prefix))).sort();
}

/** Whether the visitor's page is their own (they granted personalization, or analytics, which
 * puts them in experiments, and their browser sent no privacy signal) or they are logged in:
 * their pages are the origin's, as nginx.conf says. */
export function needsOrigin(request: RequestLike, cookies = { consent: "tl_consent", session: "sessionid" }): boolean {
  const jar = parseCookies(request.headers.get("Cookie"));
  if (jar[cookies.session]) return true;
  const signal = request.headers.get("Sec-GPC") === "1" || request.headers.get("DNT") === "1";
  const granted = (jar[cookies.consent] ?? "").split(".");
  return !signal && (granted.includes("personalization") || granted.includes("analytics"));
}

export function parseCookies(header: string | null | undefined): Record<string, string> {
  const jar: Record<string, string> = {};
  for (const piece of (header ?? "").split(";")) {
    const at = piece.indexOf("=");
    if (at > 0) {
      const name = piece.slice(0, at).trim();
      if (!(name in jar)) jar[name] = piece.slice(at + 1).trim().replace(/^"(.*)"$/, "$1");
    }
  }
  return jar;
}

/** The audience key of a request, e.g. "mobile.GB.morning.sat". */
export function audienceKeyOf(request: RequestLike, options: ContextOptions = {}): string {
  return audienceKey(audienceOf(contextFromRequest(request, options)));
}

/** A personalized block as the edge sees it: its variants' targeting, in order. */
export interface EdgeBlock {
  id: string;
  variants: VariantTags[];
}

export type EdgeDecision =
  | { decided: true; block: string; variant: string; index: number | null }
  | { decided: false; block: string; reason: "origin_visitor" | "unknown_facts"; facts?: string[] };

/** Segment rules (JSON, by slug) compiled once; throws RuleError for an invalid rule. */
export function compileSegments(rules: Readonly<Record<string, unknown>>, options: CompileOptions = {}): Record<string, CompiledRule> {
  return Object.fromEntries(Object.entries(rules).map(([slug, rule]) => [slug, compileRule(rule, options)]));
}

/** The variant of `block` for a visitor without a profile, or why the origin must decide. */
export function decideAtEdge(
  block: EdgeBlock, segments: Readonly<Record<string, CompiledRule>>, context: Context,
  options: { originVisitor?: boolean; now?: number | null } = {},
): EdgeDecision {
  if (options.originVisitor) return { decided: false, block: block.id, reason: "origin_visitor" };
  const segmentFacts = Object.fromEntries(Object.entries(segments).map(([slug, rule]) => [slug, ruleFacts(rule.source)]));
  const facts = new Set(block.variants.flatMap((tags) => [...variantFacts(tags, segmentFacts)]));
  const unknown = unknownAtEdge(facts);
  if (unknown.length) return { decided: false, block: block.id, reason: "unknown_facts", facts: unknown };
  const index = chooseVariant(block.variants, matchingSegments(segments, context), context, options.now ?? null);
  return { decided: true, block: block.id, variant: index === null ? FALLBACK : block.variants[index].key, index };
}
