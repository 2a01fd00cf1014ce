// Context facts from one HTTP request at the edge: what personalization/context/ establishes
// from the same headers, so a CDN worker and the app see the same visitor.
//
// Established here: the device class (the classification of docs/deploy/varnish.vcl, which is
// tailored.context.device's without ua-parser), country, region and city
// from trusted CDN headers, daypart, weekday, hour and minute in a given time zone, this page's
// path and query parameters, the referrer, its host and class, UTM campaign values, the landing
// page and the same-site referrer's parameters. Not established: browser and OS families
// (ua-parser), locale, weather, the account (user.*) and site facts: rules reading them are the
// origin's to decide.

import { daypartAt, daypartStarts, localTime } from "./clock.js";
import type { Context } from "./types.js";

/** The parts of a request the edge reads: a Fetch API Request qualifies. */
export interface RequestLike {
  url: string;
  headers: { get(name: string): string | null };
}

export interface GeoHeaders {
  country?: string | null;
  region?: string | null;
  city?: string | null;
}

export const CLOUDFLARE: GeoHeaders = { country: "CF-IPCountry", region: "CF-Region-Code", city: "CF-IPCity" };
export const CLOUDFRONT: GeoHeaders = { country: "CloudFront-Viewer-Country", region: "CloudFront-Viewer-Country-Region", city: "CloudFront-Viewer-City" };
export const VERCEL: GeoHeaders = { country: "X-Vercel-IP-Country", region: "X-Vercel-IP-Country-Region", city: "X-Vercel-IP-City" };

export interface ContextOptions {
  /** The site's own host names (without "www."): their referrers are internal navigation. */
  ownHosts?: string[];
  /** Which trusted headers carry geo; the app's default reads CF-IPCountry only. */
  geo?: GeoHeaders;
  /** The IANA zone dayparts follow (the site's TIME_ZONE, as the proxies use), or a function of the visitor's geo. */
  timeZone?: string | ((geo: { country: string | null; region: string | null }) => string | null | undefined);
  /** The site's DAYPARTS setting, when it moves the default start times. */
  dayparts?: Record<string, string>;
  /** Epoch milliseconds (default: now). */
  now?: number;
}

// Device class -------------------------------------------------------------------------------

const BOT_HINT = /bot|crawl|spider|slurp|headlesschrome|lighthouse|preview/i;
const TABLET_HINT = /ipad|tablet|kindle|silk|playbook/i;
const MOBILE_HINT = /mobi|iphone|ipod|android|windows phone|blackberry|kaios/i;

/** mobile, tablet, desktop or bot; an empty User-Agent is a bot (first match wins). */
export function deviceClass(userAgent: string | null | undefined): string {
  if (!userAgent) return "bot";
  if (BOT_HINT.test(userAgent)) return "bot";
  // Android tablets omit "Mobile" from their User-Agent, wherever it would stand (as the app checks).
  if (TABLET_HINT.test(userAgent) || (/android/i.test(userAgent) && !userAgent.includes("Mobile"))) return "tablet";
  if (MOBILE_HINT.test(userAgent)) return "mobile";
  return "desktop";
}

// Geo ----------------------------------------------------------------------------------------

const COUNTRY = /^[A-Z]{2}$/;
const SUBDIVISION = /^(?:([A-Z]{2})-)?([A-Z0-9]{1,3})$/;
const UNKNOWN_COUNTRIES = new Set(["XX", "ZZ", "EU", "AP", "A1", "A2", "O1", "T1"]);
const COUNTRY_ALIASES: Record<string, string> = { UK: "GB" };
const CONTROL = /[\x00-\x1f\x7f]/;

/** A valid ISO 3166-1 alpha-2 code, upper case; null for garbage and unknown markers. */
export function countryCode(value: string | null | undefined): string | null {
  if (!value) return null;
  let code = value.trim().toUpperCase();
  code = COUNTRY_ALIASES[code] ?? code;
  return COUNTRY.test(code) && !UNKNOWN_COUNTRIES.has(code) ? code : null;
}

/** An ISO 3166-2 code from a bare ("CA") or full ("US-CA") subdivision value. */
export function regionCode(value: string | null | undefined, country: string | null): string | null {
  if (!value || value.length > 8) return null;
  const match = SUBDIVISION.exec(value.trim().toUpperCase());
  if (!match) return null;
  const prefix = match[1] ? (COUNTRY_ALIASES[match[1]] ?? match[1]) : country;
  if (prefix === null || (country !== null && prefix !== country) || countryCode(prefix) === null) return null;
  return `${prefix}-${match[2]}`;
}

export function cityName(value: string | null | undefined): string | null {
  if (!value) return null;
  if (value.includes("%")) {
    try { value = decodeURIComponent(value); } catch { /* kept as sent */ }
  }
  value = value.split(/\s+/).filter(Boolean).join(" ");
  return !value || value.length > 80 || CONTROL.test(value) ? null : value;
}

export function geoFromHeaders(headers: RequestLike["headers"], names: GeoHeaders = { country: "CF-IPCountry" }) {
  const country = names.country ? countryCode(headers.get(names.country)) : null;
  const region = names.region ? regionCode(headers.get(names.region), country) : null;
  if (country === null && region === null) return { country: null, region: null, city: null };
  const city = names.city ? cityName(headers.get(names.city)) : null;
  return { country: country ?? region!.slice(0, 2), region, city };
}

// Place: path, query, referrer ---------------------------------------------------------------

const PARAMETER_NAME = /^[A-Za-z0-9_.\-[\]]{1,40}$/;
const MAX_PARAMETERS = 20, MAX_VALUE_CHARS = 200, MAX_QUERY_CHARS = 4096, MAX_URL_CHARS = 500, MAX_PATH_CHARS = 300;

function pairs(queryString: string, keepBlank: boolean): [string, string][] {
  const found: [string, string][] = [];
  for (const piece of queryString.split("&")) {
    if (!piece) continue;
    const at = piece.indexOf("=");
    if (at < 0 && !keepBlank) continue;
    const [name, value] = at < 0 ? [piece, ""] : [piece.slice(0, at), piece.slice(at + 1)];
    if (!value && !keepBlank) continue;
    found.push([decode(name), decode(value)]);
  }
  return found;
}

function decode(text: string): string {
  try { return decodeURIComponent(text.replace(/\+/g, " ")); } catch { return text.replace(/\+/g, " "); }
}

/** The first value of each parameter a rule could name, bounded as the app bounds it. */
export function queryParameters(queryString: string): Record<string, string> {
  const found: Record<string, string> = {};
  if (!queryString) return found;
  const bounded = queryString.slice(0, MAX_QUERY_CHARS).split("&").slice(0, 4 * MAX_PARAMETERS).join("&");
  let count = 0;
  for (const [name, value] of pairs(bounded, true)) {
    if (!Object.hasOwn(found, name) && PARAMETER_NAME.test(name)) {
      found[name] = value.slice(0, MAX_VALUE_CHARS);
      if (++count === MAX_PARAMETERS) break;
    }
  }
  return found;
}

/** A UTM value as Django's slugify makes it ("Summer Sale 2025" -> "summer-sale-2025"), at most 64 characters. */
export function utmValue(value: string | null | undefined): string | null {
  if (!value) return null;
  const slug = value.slice(0, 256).normalize("NFKD").replace(/[^\x00-\x7f]/g, "").toLowerCase()
    .replace(/[^\w\s-]/g, "").replace(/[-\s]+/g, "-").replace(/^[-_]+|[-_]+$/g, "");
  const bounded = slug.slice(0, 64).replace(/^[-_]+|[-_]+$/g, "");
  return bounded || null;
}

const EMAIL_HOSTS = new Set(("mail.google.com inbox.google.com outlook.live.com outlook.office.com outlook.office365.com mail.yahoo.com " +
  "mail.aol.com mail.proton.me mail.protonmail.com app.fastmail.com mail.zoho.com mail.yandex.ru e.mail.ru mail.gmx.net " +
  "navigator.gmx.net navigator.web.de mail.tutanota.com app.tuta.com").split(" "));
const EMAIL_LABELS = new Set(["mail", "webmail", "email", "outlook"]);
const SOCIAL_DOMAINS = new Set(("facebook.com fb.com fb.me messenger.com instagram.com threads.net threads.com t.co twitter.com x.com " +
  "linkedin.com lnkd.in reddit.com redd.it pinterest.com pin.it youtube.com youtu.be tiktok.com snapchat.com tumblr.com bsky.app " +
  "mastodon.social vk.com ok.ru weibo.com quora.com news.ycombinator.com wa.me whatsapp.com t.me telegram.org discord.com xing.com medium.com").split(" "));
const SEARCH_DOMAINS = new Set(("duckduckgo.com ecosia.org qwant.com startpage.com search.brave.com kagi.com naver.com seznam.cz ask.com " +
  "search.aol.com so.com sogou.com daum.net yandex.ru ya.ru baidu.com search.yahoo.com mojeek.com").split(" "));
const SEARCH_BRANDS = new Set(["google", "bing", "yahoo", "yandex", "baidu"]);
const ANDROID_APPS: Record<string, string> = {
  "com.google.android.gm": "email", "com.microsoft.office.outlook": "email", "com.google.android.googlequicksearchbox": "search",
  "com.facebook.katana": "social", "com.instagram.android": "social", "com.twitter.android": "social",
  "com.linkedin.android": "social", "com.reddit.frontpage": "social", "org.telegram.messenger": "social",
};
const SHORT_LABEL = /^[a-z]{2,3}$/;

/** email, search, social or other for a referring host name. */
export function hostClass(host: string): string {
  if (host.startsWith("www.")) host = host.slice(4);
  const labels = host.split(".");
  if (EMAIL_HOSTS.has(host) || EMAIL_LABELS.has(labels[0])) return "email";
  const suffixes = labels.slice(0, -1).map((_, i) => labels.slice(i).join("."));
  if (suffixes.some((suffix) => SOCIAL_DOMAINS.has(suffix))) return "social";
  const brand = labels.some((label, i) => {
    const rest = labels.slice(i + 1);
    return SEARCH_BRANDS.has(label) && rest.length >= 1 && rest.length <= 2 && rest.every((part) => SHORT_LABEL.test(part));
  });
  return suffixes.some((suffix) => SEARCH_DOMAINS.has(suffix)) || brand ? "search" : "other";
}

function parseUrl(text: string): URL | null {
  try { return new URL(text); } catch { return null; }
}

function hostOf(url: URL): string | null {
  // URL.hostname keeps IPv6 brackets and a trailing dot; Python's urlsplit drops the first.
  return url.hostname.replace(/^\[|\]$/g, "").replace(/\.+$/, "").toLowerCase() || null;
}

// The whole context ---------------------------------------------------------------------------

/** Every context fact the edge can establish from `request`; what it cannot stays null. */
export function contextFromRequest(request: RequestLike, options: ContextOptions = {}): Context {
  const url = new URL(request.url);
  const headers = request.headers;
  const ownHosts = new Set((options.ownHosts ?? [url.hostname]).map((host) => host.toLowerCase().replace(/^www\./, "")));
  const geo = geoFromHeaders(headers, options.geo);
  const zone = (typeof options.timeZone === "function" ? options.timeZone(geo) : options.timeZone) || "UTC";
  const local = localTime(options.now ?? Date.now(), zone);
  const starts = options.dayparts ? daypartStarts(options.dayparts) : undefined;
  const queryString = url.search.slice(1);
  const path = decode(url.pathname).slice(0, MAX_PATH_CHARS) || null;
  const context: Context = {
    device: deviceClass(headers.get("User-Agent")),
    country: geo.country, region: geo.region, city: geo.city,
    timezone: zone, daypart: daypartAt(local.minute_of_day, starts), weekday: local.weekday,
    local_hour: local.hour, local_minute: local.minute_of_day,
    path, query: queryParameters(queryString), session_query: {},
    referrer: null, referrer_host: null, landing_page: path,
    ...referrerFacts(headers.get("Referer") ?? "", queryString, ownHosts),
  };
  const referer = (headers.get("Referer") ?? "").trim().slice(0, MAX_URL_CHARS);
  if (referer) {
    const parsed = parseUrl(referer);
    const host = parsed && hostOf(parsed)?.replace(/^www\./, "");
    context.referrer = referer;
    context.referrer_host = host || null;
    if (host && ownHosts.has(host)) {
      context.landing_page = null; // the visit began on an earlier page of this site
      context.session_query = queryParameters(parsed!.search.slice(1));
    }
  }
  return context;
}

/** The referrer class and UTM values of one request (personalization/context/referrer.py). */
export function referrerFacts(referer: string, queryString: string, ownHosts: ReadonlySet<string>): Pick<Context, "referrer_class" | "utm_source" | "utm_medium" | "utm_campaign"> {
  if (queryString.includes("utm_") || queryString.includes("clid=") || queryString.includes("clkid=")) {
    const params: Record<string, string> = {};
    for (const [name, value] of pairs(queryString.slice(0, MAX_QUERY_CHARS), false)) params[name] = value; // the last one wins, as dict() does
    const [source, medium, campaign] = ["utm_source", "utm_medium", "utm_campaign"].map((name) => utmValue(params[name]));
    if (source || medium || campaign || params.gclid || params.msclkid) {
      return { referrer_class: "campaign", utm_source: source, utm_medium: medium, utm_campaign: campaign };
    }
  }
  return { referrer_class: referrerClass(referer, ownHosts), utm_source: null, utm_medium: null, utm_campaign: null };
}

function referrerClass(referer: string, ownHosts: ReadonlySet<string>): string | null {
  if (!referer) return "direct";
  const text = referer.slice(0, 2048).trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1].toLowerCase();
  if (scheme === "android-app") {
    const app = /^android-app:\/\/([^/?#]+)/i.exec(text)?.[1].toLowerCase() ?? "";
    return ANDROID_APPS[app] ?? "other";
  }
  const parsed = parseUrl(text);
  const host = parsed && hostOf(parsed);
  if (!host) return "other";
  if (ownHosts.has(host) || ownHosts.has(host.replace(/^www\./, ""))) return null;
  return hostClass(host);
}
