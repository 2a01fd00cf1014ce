// Clock arithmetic shared by rules, dayparts and schedules (personalization/core/context.py).

import { DAYPARTS, WEEKDAYS } from "./types.js";

export const MINUTES_PER_DAY = 24 * 60;
/** When each daypart starts (visitor-local "HH:MM"); the last runs past midnight into the first. */
export const DEFAULT_DAYPART_STARTS: Readonly<Record<string, string>> = { morning: "05:00", afternoon: "12:00", evening: "17:00", night: "22:00" };
const CLOCK = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Minutes after midnight of an "HH:MM" time (00:00 to 23:59), or null if it is not one. */
export function clockMinutes(text: unknown): number | null {
  if (typeof text !== "string") return null;
  const match = CLOCK.exec(text);
  return match ? Number(match[1]) * 60 + Number(match[2]) : null;
}

/** Validated daypart starts as [minute, daypart] sorted by minute; throws RangeError otherwise. */
export function daypartStarts(starts: Readonly<Record<string, string>> = DEFAULT_DAYPART_STARTS): [number, string][] {
  const names = Object.keys(starts);
  if (names.length !== DAYPARTS.length || !DAYPARTS.every((name) => names.includes(name))) {
    throw new RangeError(`DAYPARTS must give a start time for each of ${DAYPARTS.join(", ")}`);
  }
  const parsed: [number, string][] = names.map((name) => {
    const minute = clockMinutes(starts[name]);
    if (minute === null) throw new RangeError(`DAYPARTS[${JSON.stringify(name)}] must be a time such as '05:30'`);
    return [minute, name];
  });
  if (new Set(parsed.map(([minute]) => minute)).size !== parsed.length) throw new RangeError("DAYPARTS must start at distinct times");
  return parsed.sort((a, b) => a[0] - b[0]);
}

const DEFAULT_STARTS = daypartStarts();

/** The daypart a minute of the day falls in: the last one started at or before it. */
export function daypartAt(minute: number, starts: [number, string][] = DEFAULT_STARTS): string {
  let current = starts[starts.length - 1][1];
  for (const [start, name] of starts) {
    if (start > minute) break;
    current = name;
  }
  return current;
}

export interface LocalTime {
  weekday: string;
  hour: number;
  minute_of_day: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The weekday, hour and minute of the day at `now` (epoch ms) in an IANA time zone. */
export function localTime(now: number, timeZone = "UTC"): LocalTime {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", { timeZone, weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    formatters.set(timeZone, format);
  }
  const parts: Record<string, string> = {};
  for (const part of format.formatToParts(now)) parts[part.type] = part.value;
  const hour = Number(parts.hour) % 24;
  const weekday = WEEKDAYS.find((day) => parts.weekday.toLowerCase().startsWith(day)) ?? "mon";
  return { weekday, hour, minute_of_day: hour * 60 + Number(parts.minute) };
}
