// The visitor's consent as Tailored records it: the `tl_consent` cookie ("analytics.personalization",
// "analytics", "personalization" or "none"; absent until they answer) and the browser's privacy
// signals (Sec-GPC, DNT, navigator.globalPrivacyControl), which override any stored answer.

export interface Consent {
  /** Whether the visitor answered the banner. */
  decided: boolean;
  analytics: boolean;
  personalization: boolean;
  /** The browser asked not to be tracked (GPC or DNT): nothing is tracked, whatever the answer. */
  optedOutByBrowser: boolean;
}

export const UNDECIDED: Consent = { decided: false, analytics: false, personalization: false, optedOutByBrowser: false };

/** The consent a `tl_consent` cookie value records. */
export function consentFromCookie(value: string | null | undefined, optedOutByBrowser = false): Consent {
  if (value === null || value === undefined || value === "") return { ...UNDECIDED, optedOutByBrowser };
  const categories = value.split(".");
  return { decided: true, analytics: categories.includes("analytics"), personalization: categories.includes("personalization"), optedOutByBrowser };
}

/** The cookie value of a consent ("none" when nothing is granted). */
export function consentCookieValue(consent: Pick<Consent, "analytics" | "personalization">): string {
  return [consent.analytics && "analytics", consent.personalization && "personalization"].filter(Boolean).join(".") || "none";
}

/** Events may be sent: analytics or personalization granted, and no privacy signal. */
export function allowsEvents(consent: Consent): boolean {
  return (consent.analytics || consent.personalization) && !consent.optedOutByBrowser;
}

/** A profile may be used for this visitor: personalization granted, and no privacy signal. */
export function allowsProfile(consent: Consent): boolean {
  return consent.personalization && !consent.optedOutByBrowser;
}

/** Whether request headers carry a privacy signal (`Sec-GPC: 1` or `DNT: 1`). */
export function privacySignal(headers: HeaderSource): boolean {
  return header(headers, "Sec-GPC") === "1" || header(headers, "DNT") === "1";
}

/** Headers as a Fetch API Headers, a Node IncomingHttpHeaders object or a plain record. */
export type HeaderSource = { get(name: string): string | null } | Readonly<Record<string, string | string[] | undefined>>;

export function header(headers: HeaderSource | undefined, name: string): string | null {
  if (!headers) return null;
  if (typeof (headers as { get?: unknown }).get === "function") return (headers as { get(name: string): string | null }).get(name);
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (key.toLowerCase() === wanted && value !== undefined) return Array.isArray(value) ? value.join(", ") : value;
  }
  return null;
}

export function parseCookies(cookieHeader: string | null | undefined): Record<string, string> {
  const jar: Record<string, string> = {};
  for (const piece of (cookieHeader ?? "").split(";")) {
    const at = piece.indexOf("=");
    if (at <= 0) continue;
    const name = piece.slice(0, at).trim();
    if (!(name in jar)) jar[name] = piece.slice(at + 1).trim().replace(/^"(.*)"$/, "$1");
  }
  return jar;
}
