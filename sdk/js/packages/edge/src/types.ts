// The values every decision works on, as personalization/core/types.py defines them. Field names
// are the Python Context's (snake_case), because they are a data contract: fixtures/spec/*.json,
// the X-Tailored-Context header and the rule language all spell them so.

export const DEVICES = ["mobile", "tablet", "desktop", "bot"] as const;
export const DAYPARTS = ["morning", "afternoon", "evening", "night"] as const;
export const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export const REFERRER_CLASSES = ["search", "social", "email", "direct", "campaign", "other"] as const;
export const WEATHER_CONDITIONS = ["clear", "clouds", "rain", "snow", "storm", "fog"] as const;

/** Facts about one request; a fact nobody could establish is null or absent (geo is never guessed). */
export interface Context {
  device?: string;
  browser?: string | null;
  os?: string | null;
  daypart?: string | null;
  weekday?: string | null;
  local_hour?: number | null;
  timezone?: string | null;
  country?: string | null;
  region?: string | null;
  city?: string | null;
  referrer_class?: string | null;
  utm_source?: string | null;
  utm_medium?: string | null;
  utm_campaign?: string | null;
  locale?: string | null;
  weather?: string | null;
  temperature_c?: number | null;
  local_minute?: number | null;
  path?: string | null;
  query?: Readonly<Record<string, string>>;
  session_query?: Readonly<Record<string, string>>;
  referrer?: string | null;
  referrer_host?: string | null;
  landing_page?: string | null;
  logged_in?: boolean;
  is_staff?: boolean;
  user_groups?: readonly string[];
  account_age_days?: number | null;
  site?: Readonly<Record<string, unknown>>;
}
