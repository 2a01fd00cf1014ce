// The rule language of personalization/core/rules.py: a JSON condition tree, validated and
// compiled once, evaluated many times. Compilation accepts exactly what Python accepts and fails
// with the same JSON path ("$.all[1].op: ..."), so a rule an editor saved is understood alike.
//
// The edge is context-only: it has no profile store. Conditions on the profile (counts, dwell,
// sequences, carts, profile.* and score.* fields) are evaluated over the EMPTY profile, which is
// exactly the profile of a visitor without personalization consent. `readsProfile` says whether
// a rule looks at the profile at all; for a visitor with consent such a rule is the origin's.

import { clockMinutes, MINUTES_PER_DAY } from "./clock.js";
import { DAYPARTS, DEVICES, REFERRER_CLASSES, WEATHER_CONDITIONS, WEEKDAYS, type Context } from "./types.js";

export type Kind = "number" | "text" | "flag" | "texts" | "time";
type Value = unknown;
type Reader = (context: Context) => Value;
type Test = (seen: Value) => boolean;

const EVENT_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const PARAMETER_NAME = /^[A-Za-z0-9_.\-[\]]{1,40}$/;
const MAX_PATTERN = 200;
const MAX_MATCHED_TEXT = 500;
const MAX_WINDOW_HOURS = 90 * 24;
const ITEM_COUNTED_EVENTS = ["page_view", "add_to_cart"];
const COUNT_NARROWINGS = ["category", "item", "page", "section"];
const OPERATORS_BY_KIND: Record<Kind, string[]> = {
  number: ["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in"],
  text: ["eq", "ne", "in", "not_in", "contains", "matches", "present"],
  flag: ["eq", "ne"],
  texts: ["contains", "contains_any", "present"],
  time: ["gte", "lt", "lte", "gt", "between", "eq", "ne"],
};
const LEAVES = ["field", "count", "avg_dwell", "sequence", "cart_abandoned"] as const;

/** A rule that cannot be compiled; `path` points into the JSON (e.g. `$.all[1].op`). */
export class RuleError extends Error {
  constructor(readonly path: string, readonly detail: string) {
    super(`${path}: ${detail}`);
    this.name = "RuleError";
  }
}

interface FieldSpec {
  kind: Kind;
  read: Reader;
  choices?: readonly string[];
  period?: number;
  /** Reads the profile (directly, or as a fallback when the request does not say). */
  profile?: boolean;
  /** The operators it takes when narrower than its kind's (a trait's). */
  operators?: string[];
}

const none = (value: Value): Value => (value === undefined ? null : value);
const context = (name: keyof Context, choices?: readonly string[], kind: Kind = "text"): FieldSpec =>
  ({ kind, read: (c) => none(c[name]), choices });
// What the empty profile (a visitor without personalization consent) holds for each field.
const emptyProfile = (kind: Kind, value: Value): FieldSpec => ({ kind, read: () => value, profile: true });

const FIELDS: Record<string, FieldSpec> = {
  "context.device": { kind: "text", read: (c) => c.device ?? "desktop", choices: DEVICES },
  "context.browser": context("browser"),
  "context.os": context("os"),
  "context.daypart": context("daypart", DAYPARTS),
  "context.weekday": context("weekday", WEEKDAYS),
  "context.local_hour": { kind: "number", read: (c) => none(c.local_hour), period: 24 },
  "context.local_time": context("local_minute", undefined, "time"),
  "context.country": context("country"),
  "context.region": context("region"),
  "context.city": context("city"),
  "context.referrer_class": context("referrer_class", REFERRER_CLASSES),
  "context.referrer": context("referrer"),
  "context.referrer_host": context("referrer_host"),
  "context.path": context("path"),
  // This page when the visit starts here, else what the profile remembers (nothing, at the edge).
  "context.landing_page": { kind: "text", read: (c) => c.landing_page || null, profile: true },
  "context.utm_source": context("utm_source"),
  "context.utm_medium": context("utm_medium"),
  "context.utm_campaign": context("utm_campaign"),
  "context.locale": context("locale"),
  "context.weather": context("weather", WEATHER_CONDITIONS),
  "context.temperature_c": context("temperature_c", undefined, "number"),
  "user.logged_in": { kind: "flag", read: (c) => c.logged_in ?? false },
  "user.is_staff": { kind: "flag", read: (c) => c.is_staff ?? false },
  "user.groups": { kind: "texts", read: (c) => c.user_groups ?? [] },
  "user.account_age_days": { kind: "number", read: (c) => none(c.account_age_days) },
  "profile.page_views": emptyProfile("number", 0),
  "profile.sessions": emptyProfile("number", 0),
  "profile.sessions_7d": emptyProfile("number", 0),
  "profile.days_since_last_seen": emptyProfile("number", null),
  "profile.days_since_first_seen": emptyProfile("number", null),
  "profile.session_content_views": emptyProfile("number", 0),
  "profile.session_converted": emptyProfile("flag", false),
  "profile.cart_items": emptyProfile("texts", []),
  "profile.cart_size": emptyProfile("number", 0),
  "profile.minutes_since_cart_change": emptyProfile("number", null),
  "profile.purchases": emptyProfile("number", 0),
  "profile.lifetime_value": emptyProfile("number", 0),
  "profile.days_since_purchase": emptyProfile("number", null),
  "profile.average_scroll_depth": emptyProfile("number", null),
  "profile.recent_searches": emptyProfile("texts", []),
  "profile.viewed_items": emptyProfile("texts", []),
  "profile.preferences": emptyProfile("texts", []),
  "profile.persona": emptyProfile("text", null),
};

/** A CRM trait's kind as the site declares it (issue 20): `trait.<key>` takes its operators. */
export type TraitKind = "text" | "number" | "boolean" | "choice";
const TRAIT_KINDS: Record<TraitKind, Kind> = { text: "text", number: "number", boolean: "flag", choice: "text" };
const TRAIT_OPERATORS: Record<TraitKind, string[]> = {
  text: ["eq", "in", "contains", "present"],
  number: ["eq", "gt", "gte", "lt", "lte", "between", "present"],
  boolean: ["eq"],
  choice: ["eq", "in", "present"],
};

export interface CompileOptions {
  /** The site's declared traits, key -> kind (with choices for a "choice"); undeclared ones are errors, as in Python. */
  traits?: Readonly<Record<string, TraitKind | { kind: TraitKind; choices?: string[] }>>;
}

/** The field a rule names, with the open families score.*, context.query.*, visit.query.*, trait.*. */
export function lookupField(name: unknown, options: CompileOptions = {}): FieldSpec | null {
  if (typeof name !== "string") return null;
  if (name.startsWith("trait.")) {
    const key = name.slice("trait.".length);
    const declared = options.traits && Object.hasOwn(options.traits, key) ? options.traits[key] : undefined;
    if (declared === undefined) return null;
    const { kind, choices = [] } = typeof declared === "string" ? { kind: declared } : declared;
    // A trait is part of the profile, which is empty at the edge.
    return { kind: TRAIT_KINDS[kind], read: () => null, profile: true, operators: TRAIT_OPERATORS[kind], choices: kind === "choice" ? choices : [] };
  }
  if (name.startsWith("score.") && name.length > "score.".length) return emptyProfile("number", null);
  if (name.startsWith("context.query.") || name.startsWith("visit.query.")) {
    const visit = name.startsWith("visit.");
    const parameter = name.slice(visit ? "visit.query.".length : "context.query.".length);
    if (!PARAMETER_NAME.test(parameter)) return null;
    if (!visit) return { kind: "text", read: (c) => c.query?.[parameter] ?? null };
    // This request's value, else the previous page's (same-site Referer), else the profile's.
    return { kind: "text", read: (c) => c.query?.[parameter] || c.session_query?.[parameter] || null, profile: true };
  }
  if (name.startsWith("site.")) return null; // a site's own facts are registered in its Python process only
  return Object.hasOwn(FIELDS, name) ? FIELDS[name] : null;
}

/** A compiled node: `holds` evaluates it; the compiler never lets evaluation throw. */
interface Condition {
  holds(context: Context): boolean;
}

export interface CompiledRule {
  readonly source: unknown;
  /** Whether the rule reads the profile; at the edge it reads the empty profile. */
  readonly readsProfile: boolean;
  /** The `field` names it reads. */
  readonly fields: ReadonlySet<string>;
  matches(context: Context): boolean;
}

interface Compiler {
  fields: Set<string>;
  profile: boolean;
  options: CompileOptions;
}

/** Validate `rule` and build its condition tree; throws RuleError on the first problem. */
export function compileRule(rule: unknown, options: CompileOptions = {}): CompiledRule {
  const compiler: Compiler = { fields: new Set(), profile: false, options };
  const root = compile(rule, "$", compiler);
  return { source: rule, readsProfile: compiler.profile, fields: compiler.fields, matches: (c) => root.holds(c) };
}

function isObject(node: unknown): node is Record<string, unknown> {
  return typeof node === "object" && node !== null && !Array.isArray(node);
}

function typeName(value: unknown): string {
  if (value === null || value === undefined) return "NoneType";
  if (Array.isArray(value)) return "list";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float";
  return { string: "str", boolean: "bool" }[typeof value as string] ?? typeof value;
}

function compile(node: unknown, path: string, compiler: Compiler): Condition {
  if (!isObject(node)) throw new RuleError(path, `a condition must be an object, got ${typeName(node)}`);
  for (const kind of ["all", "any"] as const) {
    if (kind in node) {
      onlyKeys(node, [kind], path);
      const children = node[kind];
      if (!Array.isArray(children) || !children.length) throw new RuleError(`${path}.${kind}`, "needs a non-empty list of conditions");
      const compiled = children.map((child, i) => compile(child, `${path}.${kind}[${i}]`, compiler));
      return kind === "all"
        ? { holds: (c) => compiled.every((child) => child.holds(c)) }
        : { holds: (c) => compiled.some((child) => child.holds(c)) };
    }
  }
  if ("not" in node) {
    onlyKeys(node, ["not"], path);
    const child = compile(node.not, `${path}.not`, compiler);
    return { holds: (c) => !child.holds(c) };
  }
  const leaf = LEAVES.find((name) => name in node);
  if (leaf === undefined) throw new RuleError(path, `expected one of ${["all", "any", "not", ...LEAVES].join(", ")}`);
  return BUILDERS[leaf](node, path, compiler);
}

function leaf(read: Reader, test: Test): Condition {
  return { holds: (c) => test(read(c)) };
}

const BUILDERS: Record<(typeof LEAVES)[number], (node: Record<string, unknown>, path: string, compiler: Compiler) => Condition> = {
  field(node, path, compiler) {
    onlyKeys(node, ["field", "op", "value"], path);
    const spec = lookupField(node.field, compiler.options);
    if (spec === null) throw new RuleError(`${path}.field`, unknownField(node.field, compiler.options));
    const test = comparison(node, path, spec.kind, spec.choices ?? [], spec.period ?? null, spec.operators);
    compiler.fields.add(node.field as string);
    compiler.profile ||= spec.profile === true;
    return leaf(spec.read, test);
  },
  count(node, path, compiler) {
    onlyKeys(node, ["count", "op", "value"], path);
    const [spec, specPath] = subSpec(node, "count", path, ["event", ...COUNT_NARROWINGS, "within_hours"]);
    const event = spec.event;
    if (typeof event !== "string" || !EVENT_NAME.test(event)) throw new RuleError(`${specPath}.event`, "must be an event type name");
    const narrowing = COUNT_NARROWINGS.filter((name) => name in spec);
    if (narrowing.length > 1) throw new RuleError(specPath, `narrow a count by one of ${COUNT_NARROWINGS.join(", ")}, not several`);
    if (narrowing.length) narrowingValue(narrowing[0], spec[narrowing[0]], event, `${specPath}.${narrowing[0]}`);
    whole(spec.within_hours, `${specPath}.within_hours`, 1, MAX_WINDOW_HOURS, "hours");
    compiler.profile = true;
    return leaf(() => 0, comparison(node, path, "number"));
  },
  avg_dwell(node, path, compiler) {
    onlyKeys(node, ["avg_dwell", "op", "value"], path);
    const [spec, specPath] = subSpec(node, "avg_dwell", path, ["category"]);
    if (typeof spec.category !== "string" || !EVENT_NAME.test(spec.category)) throw new RuleError(`${specPath}.category`, "must be a category slug");
    compiler.profile = true;
    return leaf(() => null, comparison(node, path, "number"));
  },
  sequence(node, path, compiler) {
    onlyKeys(node, ["sequence"], path);
    const [spec, specPath] = subSpec(node, "sequence", path, ["views", "within_minutes"]);
    const views = whole(spec.views, `${specPath}.views`, 1, 50, "product views");
    whole(spec.within_minutes, `${specPath}.within_minutes`, 1, 7 * 24 * 60, "minutes");
    compiler.profile = true;
    return leaf(() => 0, (seen) => (seen as number) >= views);
  },
  cart_abandoned(node, path, compiler) {
    onlyKeys(node, ["cart_abandoned"], path);
    const [spec, specPath] = subSpec(node, "cart_abandoned", path, ["idle_minutes"]);
    whole(spec.idle_minutes, `${specPath}.idle_minutes`, 1, 90 * 24 * 60, "minutes");
    compiler.profile = true;
    return leaf(() => null, () => false); // the empty profile has no cart
  },
};

function unknownField(name: unknown, options: CompileOptions): string {
  if (typeof name === "string" && name.startsWith("trait.")) {
    const declared = Object.keys(options.traits ?? {}).sort().join(", ") || "none yet";
    return `no trait ${repr(name.slice("trait.".length))} is declared (traits declared: ${declared})`;
  }
  return `unknown field ${repr(name)}; see the field list in the docs`;
}

function narrowingValue(name: string, value: unknown, event: string, path: string): string {
  if (isNumber(value) && Number.isInteger(value) && name !== "category") value = String(value);
  if (typeof value !== "string" || !EVENT_NAME.test(value)) throw new RuleError(path, `must be a ${name} slug or id`);
  if (name === "item" && !ITEM_COUNTED_EVENTS.includes(event)) {
    throw new RuleError(path, `per-item counts exist for ${[...ITEM_COUNTED_EVENTS].sort().join(", ")} only`);
  }
  if ((name === "page" || name === "section") && event !== "page_view") throw new RuleError(path, "page and section counts exist for page_view only");
  return value;
}

function comparison(
  node: Record<string, unknown>, path: string, kind: Kind, choices: readonly string[] = [], period: number | null = null, operators?: string[],
): Test {
  const { op, value } = node;
  const allowed = operators?.length ? operators : OPERATORS_BY_KIND[kind];
  if (typeof op !== "string" || !allowed.includes(op)) {
    throw new RuleError(`${path}.op`, `unknown operator ${repr(op)} for this ${kind} condition; use one of ${allowed.join(", ")}`);
  }
  const valuePath = `${path}.value`;
  if (op === "present") {
    const wanted = "value" in node ? value : true;
    if (typeof wanted !== "boolean") throw new RuleError(valuePath, "'present' takes true (has a value), false (has none) or no value");
    return (v) => (v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && v.length === 0)) === wanted;
  }
  if (op === "in" || op === "not_in" || op === "contains_any") {
    if (!Array.isArray(value) || !value.length) throw new RuleError(valuePath, `'${op}' needs a non-empty list`);
    const members = new Set(value.map((item, i) => operand(item, op === "contains_any" ? "text" : kind, choices, `${valuePath}[${i}]`)));
    if (op === "contains_any") return (v) => Array.isArray(v) && v.some((item) => members.has(item));
    return op === "in" ? (v) => members.has(v) : (v) => !members.has(v);
  }
  if (op === "between") return between(value, valuePath, kind, period);
  if (op === "contains") {
    if (typeof value !== "string" || !value) throw new RuleError(valuePath, "'contains' needs a non-empty text");
    return (v) => (typeof v === "string" || Array.isArray(v)) && v.includes(value);
  }
  if (op === "matches") return regexTest(value, valuePath);
  const wanted = operand(value, kind, choices, valuePath);
  switch (op) {
    case "gt": return (v) => v !== null && (v as number) > (wanted as number);
    case "gte": return (v) => v !== null && (v as number) >= (wanted as number);
    case "lt": return (v) => v !== null && (v as number) < (wanted as number);
    case "lte": return (v) => v !== null && (v as number) <= (wanted as number);
    case "eq": return (v) => v === wanted;
    default: return (v) => v !== wanted;
  }
}

function between(value: unknown, path: string, kind: Kind, period: number | null): Test {
  let low: number, high: number;
  if (kind === "time") {
    const bounds = Array.isArray(value) && value.length === 2 ? value.map(clockMinutes) : [null];
    if (bounds.includes(null)) throw new RuleError(path, "'between' needs [from, to] as times of day, e.g. [\"22:00\", \"02:00\"]");
    [low, high] = bounds as number[];
    period = MINUTES_PER_DAY;
  } else if (!Array.isArray(value) || value.length !== 2 || !value.every(isNumber)) {
    throw new RuleError(path, "'between' needs [low, high]");
  } else {
    [low, high] = value as number[];
  }
  if (low <= high) return (v) => v !== null && low <= (v as number) && (v as number) <= high;
  if (period === null) throw new RuleError(path, "'between' needs [low, high] with low <= high");
  if (!(0 <= high && high < low && low < period)) throw new RuleError(path, `a range crossing midnight needs values from 0 to ${period - 1}`);
  return (v) => v !== null && ((v as number) >= low || (v as number) <= high);
}

function regexTest(pattern: unknown, path: string): Test {
  if (typeof pattern !== "string" || !pattern || pattern.length > MAX_PATTERN) {
    throw new RuleError(path, `'matches' needs a regular expression of 1 to ${MAX_PATTERN} characters`);
  }
  let compiled: RegExp;
  try {
    compiled = pythonRegExp(pattern);
  } catch (error) {
    throw new RuleError(path, `not a valid regular expression: ${(error as Error).message}`);
  }
  return (v) => typeof v === "string" && compiled.test(v.slice(0, MAX_MATCHED_TEXT));
}

/** A Python `re` pattern as a RegExp: the syntax editors use is shared (classes, groups,
 * anchors, alternation, quantifiers, lookarounds); Python's spellings of a leading flag group
 * ((?i), (?s), (?m)), named groups ((?P<name>...), (?P=name)) and \A, \Z are translated. No
 * `u` flag: like Python, an unneeded escape such as \- is accepted. */
export function pythonRegExp(pattern: string): RegExp {
  let flags = "";
  const leading = /^\(\?([aiLmsux]+)\)/.exec(pattern);
  if (leading) {
    for (const flag of leading[1]) {
      if ("ims".includes(flag)) flags += flags.includes(flag) ? "" : flag;
      else if (flag !== "u") throw new SyntaxError(`the (?${flag}) flag has no JavaScript equivalent`);
    }
    pattern = pattern.slice(leading[0].length);
  }
  const source = pattern
    .replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, "(?<$1>")
    .replace(/\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/g, "\\k<$1>")
    .replace(/(^|[^\\])\\A/g, "$1^")
    .replace(/(^|[^\\])\\Z/g, "$1$(?![\\s\\S])");
  return new RegExp(source, flags);
}

function operand(value: unknown, kind: Kind, choices: readonly string[], path: string): unknown {
  if (kind === "time" && clockMinutes(value) === null) throw new RuleError(path, `must be a time of day such as "08:30", got ${repr(value)}`);
  if (kind === "number" && !isNumber(value)) throw new RuleError(path, `must be a number, got ${repr(value)}`);
  if (kind === "text" && typeof value !== "string") throw new RuleError(path, `must be text, got ${repr(value)}`);
  if (kind === "flag" && typeof value !== "boolean") throw new RuleError(path, `must be true or false, got ${repr(value)}`);
  if (choices.length && !choices.includes(value as string)) throw new RuleError(path, `must be one of ${choices.join(", ")}, got ${repr(value)}`);
  return kind === "time" ? clockMinutes(value) : value;
}

function subSpec(node: Record<string, unknown>, name: string, path: string, allowed: string[]): [Record<string, unknown>, string] {
  const spec = node[name], specPath = `${path}.${name}`;
  if (!isObject(spec)) throw new RuleError(specPath, `must be an object with ${[...allowed].sort().join(", ")}`);
  onlyKeys(spec, allowed, specPath);
  return [spec, specPath];
}

function whole(value: unknown, path: string, low: number, high: number, unit: string): number {
  if (!isNumber(value) || !Number.isInteger(value) || value < low || value > high) {
    throw new RuleError(path, `must be a whole number of ${unit}, ${low} to ${high}`);
  }
  return value;
}

function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function onlyKeys(node: Record<string, unknown>, allowed: string[], path: string): void {
  const unexpected = Object.keys(node).filter((key) => !allowed.includes(key)).sort();
  if (unexpected.length) throw new RuleError(`${path}.${unexpected[0]}`, `unexpected key; allowed here: ${[...allowed].sort().join(", ")}`);
}

function repr(value: unknown): string {
  return typeof value === "string" ? `'${value}'` : JSON.stringify(value) ?? "None";
}
