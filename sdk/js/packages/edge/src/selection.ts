// Choosing a PersonalizedBlock's variant (personalization/core/selection.py): the first variant
// whose targeting all matches wins, else the fallback. Each non-empty set must match; an empty
// set means "any".

import { localTime } from "./clock.js";
import { WEEKDAYS, type Context } from "./types.js";

export const FALLBACK = "fallback";

/** A weekly schedule: on `weekdays`, from `start` (inclusive) to `end` (exclusive), minutes
 * after local midnight; a window whose start is after its end crosses midnight and belongs to
 * the day it starts on. `zone` null: the visitor's local time; a zone name: that zone's. */
export interface Recurrence {
  weekdays: string[];
  start: number;
  end: number;
  zone?: string | null;
}

export interface VariantTags {
  key: string;
  segments?: string[];
  devices?: string[];
  dayparts?: string[];
  weekdays?: string[];
  /** ISO codes: a country ("GB") matches the country, a subdivision ("GB-ENG") the region. */
  regions?: string[];
  weather?: string[];
  campaigns?: string[];
  /** Epoch seconds, inclusive. */
  starts_at?: number | null;
  /** Epoch seconds, exclusive. */
  ends_at?: number | null;
  recurrence?: Recurrence | null;
}

const some = (values: readonly string[] | undefined): values is string[] => values !== undefined && values.length > 0;

export function recurrenceActive(recurrence: Recurrence, context: Context, now: number | null): boolean {
  let day: string | null | undefined, minute: number | null | undefined;
  if (recurrence.zone == null) {
    day = context.weekday;
    minute = context.local_minute;
  } else if (now === null) {
    return false;
  } else {
    const local = localTime(now * 1000, recurrence.zone);
    day = local.weekday;
    minute = local.minute_of_day;
  }
  if (!day || !(WEEKDAYS as readonly string[]).includes(day) || minute == null) return false;
  if (recurrence.start < recurrence.end) return recurrence.start <= minute && minute < recurrence.end && recurrence.weekdays.includes(day);
  if (minute >= recurrence.start) return recurrence.weekdays.includes(day);
  const previous = WEEKDAYS[(WEEKDAYS.indexOf(day as (typeof WEEKDAYS)[number]) + 6) % 7];
  return minute < recurrence.end && recurrence.weekdays.includes(previous);
}

/** Whether the schedule allows the variant at `now` (epoch seconds); without a clock a
 * scheduled variant never shows (a campaign must not leak before its start). */
export function liveAt(tags: VariantTags, now: number | null): boolean {
  const scheduled = tags.starts_at != null || tags.ends_at != null;
  if (!scheduled) return true;
  if (now === null) return false;
  if (tags.starts_at != null && now < tags.starts_at) return false;
  return !(tags.ends_at != null && now >= tags.ends_at);
}

export function variantMatches(tags: VariantTags, segments: ReadonlySet<string>, context: Context, now: number | null = null): boolean {
  if (some(tags.segments) && !tags.segments.some((slug) => segments.has(slug))) return false;
  if (some(tags.devices) && !tags.devices.includes(context.device ?? "desktop")) return false;
  if (some(tags.dayparts) && !tags.dayparts.includes(context.daypart as string)) return false;
  if (some(tags.weekdays) && !tags.weekdays.includes(context.weekday as string)) return false;
  if (some(tags.regions) && !tags.regions.includes(context.country as string) && !tags.regions.includes(context.region as string)) return false;
  if (some(tags.weather) && !tags.weather.includes(context.weather as string)) return false;
  if (some(tags.campaigns) && !tags.campaigns.includes(context.utm_campaign as string)) return false;
  if (tags.recurrence && !recurrenceActive(tags.recurrence, context, now)) return false;
  return liveAt(tags, now);
}

/** The index of the first matching variant at `now` (epoch seconds), or null for the fallback. */
export function chooseVariant(variants: readonly VariantTags[], segments: ReadonlySet<string>, context: Context, now: number | null = null): number | null {
  const index = variants.findIndex((tags) => variantMatches(tags, segments, context, now));
  return index < 0 ? null : index;
}
