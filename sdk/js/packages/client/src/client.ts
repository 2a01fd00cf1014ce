// @tailored/client: a headless frontend's access to Tailored over the committed GraphQL
// operations, for one visitor. Two ways to say who the visitor is:
//
// - forwarding (server-side rendering, or a browser on the same site): the visitor's own
//   `tl_vid` and `tl_consent` cookies, User-Agent and privacy signals (Sec-GPC, DNT) go with
//   every call, as examples/headless_client.py sends them; cookies the site sets come back in
//   `setCookies` for the frontend to pass on to the browser;
// - server to server: an API key (X-Tailored-Key), the visitor's 32-hex id (X-Tailored-Visitor)
//   and their context as JSON (X-Tailored-Context: user_agent, country, url, referrer, consent,
//   gpc...). The key is a server secret: never use this mode in a browser.

import {
  allowsEvents, allowsProfile, consentCookieValue, consentFromCookie, header, parseCookies, privacySignal,
  type Consent, type HeaderSource,
} from "./consent.js";
import { fail, ok, type Result } from "./errors.js";
import { Tracker, type Outcome, type QueueStorage, type TrackedEvent, type TrackerStats } from "./tracker.js";
import { OPERATIONS, post, type Answer, type Decision, type TransportOptions } from "./transport.js";

export const CONSENT_COOKIE = "tl_consent";
export const VISITOR_COOKIE = "tl_vid";
const VISITOR_ID = /^[0-9a-f]{32}$/;
const RETRYABLE_REFUSALS = new Set(["rate_limited", "unavailable"]);

/** X-Tailored-Context's fields (README, "Server-rendering frontends"). */
export interface ServerContext {
  user_agent?: string;
  country?: string;
  region?: string;
  city?: string;
  local_time?: string;
  timezone?: string;
  referrer?: string;
  url?: string;
  accept_language?: string;
}

export interface ClientOptions extends TransportOptions {
  /** Forwarding: the request the frontend received (its headers: Cookie, User-Agent, Sec-GPC, DNT). */
  request?: { headers: HeaderSource };
  /** Server to server: the API key, the visitor's id and context, and their consent. */
  apiKey?: string;
  visitorId?: string | null;
  context?: ServerContext;
  /** The visitor's consent when no cookie says it (server to server; a browser's own answer). */
  consent?: Partial<Consent>;
  /** A browser: whether navigator.globalPrivacyControl is set (read by default when present). */
  globalPrivacyControl?: boolean;
  /** Where waiting events are kept (default: memory; localStorageQueue() in a browser). */
  storage?: QueueStorage;
  /** Batching knobs (tracker.js's values by default; tests shorten them). */
  flushSize?: number;
  flushDelayMs?: number;
  firstBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface Page {
  id: string;
  title: string;
  body?: Block[];
  [field: string]: unknown;
}

export interface Block {
  id?: string;
  blockType: string;
  variant?: string;
  variantLabel?: string | null;
  blocks?: Block[];
  [field: string]: unknown;
}

export interface PersonalizedPage {
  page: Page | null;
  /** Every personalized or experimental choice on it (extensions.decisions), in page order. */
  decisions: Decision[];
  setCookies: string[];
}

export interface ConsentAnswer {
  granted: string[];
  reason: string | null;
  message: string | null;
  errors: { code: string; message: string }[];
  setCookies: string[];
}

export interface TrackAnswer {
  accepted: number;
  stored: number;
  duplicates: number;
  errors: { code: string; message: string; index?: number | null; field?: string | null }[];
}

export type TailoredClient = ReturnType<typeof createClient>;

export function createClient(options: ClientOptions) {
  if (!options.endpoint) throw new TypeError("createClient needs the site's GraphQL endpoint, e.g. https://shop.example/graphql/");
  if (options.apiKey && options.request) throw new TypeError("use either request (forwarding) or apiKey (server to server), not both");
  const jar = parseCookies(header(options.request?.headers, "Cookie"));
  const signal = options.request ? privacySignal(options.request.headers) : false;
  const gpc = options.globalPrivacyControl ?? (globalThis as { navigator?: { globalPrivacyControl?: boolean } }).navigator?.globalPrivacyControl === true;
  let consent: Consent = options.apiKey || jar[CONSENT_COOKIE] === undefined
    ? { decided: options.consent !== undefined, analytics: false, personalization: false, ...options.consent, optedOutByBrowser: signal || gpc || options.consent?.optedOutByBrowser === true }
    : consentFromCookie(jar[CONSENT_COOKIE], signal || gpc);
  let visitorCookie: string | undefined = jar[VISITOR_COOKIE];
  // Forwarded as the visitor's browser holds it: categories this client does not know (a site's
  // own) must reach Tailored unchanged.
  let consentCookie: string | undefined = jar[CONSENT_COOKIE];
  const seenDecisions = new Map<string, Decision>();
  const clicked = new Set<string>();

  function headers(): Record<string, string> {
    if (options.apiKey) {
      const sent: Record<string, string> = { "X-Tailored-Key": options.apiKey };
      if (options.visitorId && allowsEvents(consent)) sent["X-Tailored-Visitor"] = options.visitorId;
      const context = { ...options.context, gpc: consent.optedOutByBrowser || undefined, consent: consent.decided ? { analytics: consent.analytics, personalization: consent.personalization } : undefined };
      sent["X-Tailored-Context"] = JSON.stringify(context);
      return sent;
    }
    const sent: Record<string, string> = {};
    const cookies = [
      visitorCookie && `${VISITOR_COOKIE}=${visitorCookie}`,
      consent.decided && `${CONSENT_COOKIE}=${consentCookie ?? consentCookieValue(consent)}`,
    ].filter(Boolean);
    if (cookies.length) sent.Cookie = cookies.join("; ");
    const agent = header(options.request?.headers, "User-Agent");
    if (agent) sent["User-Agent"] = agent;
    for (const name of ["Sec-GPC", "DNT"]) {
      const value = header(options.request?.headers, name);
      if (value) sent[name] = value;
    }
    if (gpc && !sent["Sec-GPC"]) sent["Sec-GPC"] = "1";
    return sent;
  }

  /** Keep what the site set (a new tl_vid after consent, a deleted one after withdrawal). */
  function remember(setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair, ...attributes] = line.split(";");
      const at = pair.indexOf("=");
      const name = pair.slice(0, at).trim(), value = pair.slice(at + 1).trim().replace(/^"(.*)"$/, "$1");
      const expired = !value || attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=.*1970/i.test(a));
      if (name === VISITOR_COOKIE) visitorCookie = expired ? undefined : value;
      if (name === CONSENT_COOKIE && !expired) {
        consentCookie = value;
        consent = consentFromCookie(value, consent.optedOutByBrowser);
      }
    }
  }

  async function call<T>(id: (typeof OPERATIONS)[keyof typeof OPERATIONS], variables?: Record<string, unknown>, keepalive = false): Promise<Result<Answer<T>>> {
    if (options.apiKey && options.visitorId && !VISITOR_ID.test(options.visitorId)) {
      return fail("invalid", "invalid_visitor_id", "visitorId must be 32 lower-case hexadecimal characters");
    }
    const answer = await post<T>(options, id, variables, headers(), keepalive);
    if (answer.ok) {
      remember(answer.value.setCookies);
      for (const decision of answer.value.decisions) seenDecisions.set(decision.block, decision);
    }
    return answer;
  }

  async function sendBatch(batch: TrackedEvent[], leaving: boolean): Promise<Outcome> {
    const answer = await call<{ trackEvents: TrackAnswer }>(OPERATIONS.trackEvents, { events: batch }, leaving);
    if (!answer.ok) return answer.error.retryable ? "retry" : "drop";
    const refusals = answer.value.data.trackEvents.errors.filter((e) => e.index === null || e.index === undefined);
    return refusals.some((e) => RETRYABLE_REFUSALS.has(e.code)) ? "retry" : "sent";
  }

  const tracker = new Tracker({
    send: sendBatch, allowed: () => allowsEvents(consent), storage: options.storage,
    flushSize: options.flushSize, flushDelayMs: options.flushDelayMs, firstBackoffMs: options.firstBackoffMs, maxBackoffMs: options.maxBackoffMs,
    online: () => (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine !== false,
  });

  return {
    /** The visitor's consent as this client sees it. */
    consent: (): Consent => ({ ...consent }),
    /** Whether events may be sent / a profile used for this visitor. */
    allowsEvents: () => allowsEvents(consent),
    allowsProfile: () => allowsProfile(consent),

    /** The page at `urlPath` resolved for this visitor, and its decisions. The homepage comes from
     * the `homepage` operation (with `products: true` merged with `homepage_products`); other
     * paths from `assignments` (landing pages' experiment and personalized blocks). */
    async getPage(urlPath: string, extra: { products?: boolean } = {}): Promise<Result<PersonalizedPage>> {
      if (typeof urlPath !== "string" || !urlPath.startsWith("/")) return fail("invalid", "invalid_path", "urlPath must start with /");
      if (urlPath !== "/") {
        const answer = await call<{ page: Page | null }>(OPERATIONS.assignments, { urlPath });
        return answer.ok ? ok({ page: answer.value.data.page, decisions: answer.value.decisions, setCookies: answer.value.setCookies }) : answer;
      }
      const answer = await call<{ page: Page | null }>(OPERATIONS.homepage);
      if (!answer.ok) return answer;
      const page = answer.value.data.page;
      const setCookies = [...answer.value.setCookies];
      if (extra.products && page) {
        const rows = await call<{ page: Page | null }>(OPERATIONS.homepageProducts);
        if (!rows.ok) return rows;
        mergeById(page.body ?? [], rows.value.data.page?.body ?? []);
        setCookies.push(...rows.value.setCookies);
      }
      return ok({ page, decisions: answer.value.decisions, setCookies });
    },

    /** The `visitor` operation: segments, persona, scores, consent and context facts. */
    async getVisitor(): Promise<Result<unknown>> {
      const answer = await call<{ visitor: unknown }>(OPERATIONS.visitor);
      return answer.ok ? ok(answer.value.data.visitor) : answer;
    },

    /** The banner's answer (setConsent). Under GPC or DNT an accept is recorded as declined. */
    async setConsent(choice: { analytics: boolean; personalization: boolean }): Promise<Result<ConsentAnswer>> {
      const answer = await call<{ setConsent: Omit<ConsentAnswer, "setCookies"> }>(OPERATIONS.setConsent, { analytics: !!choice.analytics, personalization: !!choice.personalization });
      if (!answer.ok) return answer;
      const recorded = answer.value.data.setConsent;
      if (!recorded.errors?.length) {
        consent = { ...consent, decided: true, analytics: recorded.granted.includes("analytics"), personalization: recorded.granted.includes("personalization") };
        if (!allowsEvents(consent)) await tracker.flush(); // forgets whatever waits
      }
      return ok({ ...recorded, setCookies: answer.value.setCookies });
    },

    /** The right to erasure (eraseMyData). */
    async eraseMyData(): Promise<Result<{ erasedEvents: number; errors: { code: string; message: string }[] }>> {
      const answer = await call<{ eraseMyData: { erasedEvents: number; errors: { code: string; message: string }[] } }>(OPERATIONS.eraseMyData);
      return answer.ok ? ok(answer.value.data.eraseMyData) : answer;
    },

    /** Queue events (tracker.js's batching); each is {type, ...fields}. Without consent nothing is
     * kept and the answer says so. */
    track(events: { type: string; [field: string]: unknown } | { type: string; [field: string]: unknown }[]): Result<TrackedEvent[]> {
      if (!allowsEvents(consent)) {
        return fail("consent", consent.optedOutByBrowser ? "opted_out_by_browser" : "consent_required", "no events are sent without consent");
      }
      const list = Array.isArray(events) ? events : [events];
      if (list.some((e) => typeof e?.type !== "string" || !e.type)) return fail("invalid", "invalid_event", "every event needs a type");
      return ok(list.map(({ type, ...fields }) => tracker.track(type, fields)).filter((e): e is TrackedEvent => e !== null));
    },

    /** A decided block was seen (half in view for a second, as tracker.js counts it): its impression. */
    impression(decision: Decision, seconds?: number, page?: number): Result<TrackedEvent[]> {
      return this.track({ type: "impression", ...decisionFields(decision, page), seconds });
    },

    /** A click inside a decided block: the first one per block carries its decision. */
    click(target: string, decision?: Decision, page?: number): Result<TrackedEvent[]> {
      const first = decision && !clicked.has(decision.block);
      if (first) clicked.add(decision.block);
      return this.track({ type: "click", target: target.slice(0, 128), ...(first ? decisionFields(decision, page) : {}) });
    },

    /** Decisions received so far, by block id. */
    decisions: (): Decision[] => [...seenDecisions.values()],
    /** Send what waits now (e.g. before a server response ends, or with `leaving` on pagehide). */
    flush: (flushOptions?: { leaving?: boolean }) => tracker.flush(flushOptions),
    stats: (): TrackerStats => tracker.stats(),
    close: () => tracker.close(),
  };
}

/** A decision's fields as impression and click events carry them (no nulls, no holdout flag). */
export function decisionFields(decision: Decision, page?: number): Record<string, unknown> {
  const fields: Record<string, unknown> = { block: decision.block, variant: decision.variant };
  if (decision.experiment) fields.experiment = decision.experiment;
  if (decision.arm) fields.arm = decision.arm;
  if (page) fields.page = page;
  return fields;
}

/** Merge the product rows (homepage_products) into the homepage's blocks, by block id. */
function mergeById(blocks: Block[], rows: Block[]): void {
  const byId = new Map<string, Block>();
  const index = (list: Block[]) => list.forEach((row) => { if (row.id) byId.set(row.id, row); index(row.blocks ?? []); });
  index(rows);
  const merge = (list: Block[]) => list.forEach((block) => {
    const row = block.id ? byId.get(block.id) : undefined;
    if (row?.products) block.products = row.products;
    merge(block.blocks ?? []);
  });
  merge(blocks);
}
