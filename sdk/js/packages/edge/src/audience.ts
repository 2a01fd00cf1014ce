// The audience key (personalization/core/audience.py, issue 21 item 2): the four coarse request
// facts a shared cache may key a page on, "device.country.daypart.weekday" ("-" for a fact
// nobody could establish), e.g. "mobile.GB.morning.sat". A CDN worker computes it, sends it as
// X-Tailored-Audience and adds it to its cache key; the app takes those four facts from it.

import { type CompiledRule } from "./rules.js";
import { type VariantTags } from "./selection.js";
import { DAYPARTS, DEVICES, WEEKDAYS, type Context } from "./types.js";

export const UNKNOWN = "-";
export const KEYED_FACTS: ReadonlySet<string> = new Set(["device", "country", "daypart", "weekday"]);
export const URL_FACTS: ReadonlySet<string> = new Set(["utm_source", "utm_medium", "utm_campaign", "path"]);
export const QUERY_FACT = "query.";
export const PROFILE_FACT = "profile";
export const SHARED = "shared", AUDIENCE = "audience", PRIVATE = "private";
const COUNTRY = /^[A-Z]{2}$/;

export interface Audience {
  device: string;
  country: string | null;
  daypart: string | null;
  weekday: string | null;
}

export function audienceKey(audience: Audience): string {
  return [audience.device, audience.country, audience.daypart, audience.weekday].map((value) => value || UNKNOWN).join(".");
}

/** The audience a context belongs to. */
export function audienceOf(context: Context): Audience {
  const device = context.device && (DEVICES as readonly string[]).includes(context.device) ? context.device : "desktop";
  return { device, country: context.country ?? null, daypart: context.daypart ?? null, weekday: context.weekday ?? null };
}

/** The audience of a key such as "mobile.GB.morning.sat"; null when it is not a valid key. */
export function parseAudienceKey(text: string | null | undefined): Audience | null {
  if (!text || text.length > 40) return null;
  const parts = text.trim().split(".");
  if (parts.length !== 4) return null;
  const [device, country, daypart, weekday] = parts.map((part) => (part === UNKNOWN ? null : part));
  if (device === null || !(DEVICES as readonly string[]).includes(device)) return null;
  if (country !== null && !COUNTRY.test(country)) return null;
  if (daypart !== null && !(DAYPARTS as readonly string[]).includes(daypart)) return null;
  if (weekday !== null && !(WEEKDAYS as readonly string[]).includes(weekday)) return null;
  return { device, country, daypart, weekday };
}

const GROUPS = ["all", "any", "not"];
const PROFILE_CONDITIONS = ["count", "avg_dwell", "sequence", "cart_abandoned"];

/** The facts a rule (its JSON source) reads, named as audience.py's rule_facts names them. */
export function ruleFacts(rule: unknown): Set<string> {
  const facts = new Set<string>();
  const pending: unknown[] = [rule];
  while (pending.length) {
    const node = pending.pop();
    if (Array.isArray(node)) pending.push(...node);
    else if (typeof node === "object" && node !== null) {
      const record = node as Record<string, unknown>;
      const groups = GROUPS.filter((name) => name in record).map((name) => record[name]);
      if (groups.length) pending.push(...groups);
      else if (typeof record.field === "string") facts.add(fieldFact(record.field));
      else if (PROFILE_CONDITIONS.some((name) => name in record)) facts.add(PROFILE_FACT);
      else facts.add("unknown");
    }
  }
  return facts;
}

function fieldFact(field: string): string {
  if (field.startsWith("profile.") || field.startsWith("score.") || field.startsWith("trait.")) return PROFILE_FACT;
  return field.startsWith("context.") ? field.slice("context.".length) : field;
}

/** The facts choosing a variant reads: its context tags and its segments' rules. */
export function variantFacts(tags: VariantTags, segmentFacts: Readonly<Record<string, ReadonlySet<string>>>): Set<string> {
  const facts = new Set<string>();
  const tagged: [string, string[] | undefined][] = [
    ["device", tags.devices], ["daypart", tags.dayparts], ["weekday", tags.weekdays],
    ["weather", tags.weather], ["utm_campaign", tags.campaigns],
  ];
  for (const [name, values] of tagged) if (values?.length) facts.add(name);
  for (const code of tags.regions ?? []) facts.add(code.includes("-") ? "region" : "country");
  if (tags.recurrence && tags.recurrence.zone == null) {
    facts.add("weekday");
    facts.add("local_minute");
  }
  for (const slug of tags.segments ?? []) for (const fact of segmentFacts[slug] ?? []) facts.add(fact);
  return facts;
}

/** How a page whose decisions for a visitor without consent read `facts` may be cached. */
export function dependence(facts: Iterable<string>): typeof SHARED | typeof AUDIENCE | typeof PRIVATE {
  const left = [...facts].filter((fact) => !fact.startsWith(QUERY_FACT) && !URL_FACTS.has(fact) && fact !== PROFILE_FACT);
  if (!left.length) return SHARED;
  return left.every((fact) => KEYED_FACTS.has(fact)) ? AUDIENCE : PRIVATE;
}

/** Segment slugs whose rules hold for this context (profile conditions read the empty profile). */
export function matchingSegments(rules: Readonly<Record<string, CompiledRule>>, context: Context): Set<string> {
  return new Set(Object.keys(rules).filter((slug) => rules[slug].matches(context)));
}
