// When a decided block counts as seen, as tracker.js counts it: half of it in view for one
// second at a stretch, once per page view. Kept apart from React so it is testable on its own.

import type { Decision } from "@tailored/client";

export const VISIBLE_RATIO = 0.5;
export const SEEN_AFTER_MS = 1_000;

/** What this needs of IntersectionObserver (the browser's, or a test's). */
export type ObserverFactory = (callback: (entries: { intersectionRatio: number }[]) => void, options: { threshold: number[] }) => {
  observe(target: unknown): void;
  disconnect(): void;
};

/** Call `onSeen(seconds)` once when `element` has been at least half in view for a second;
 * returns a function that stops watching. Without IntersectionObserver it never fires. */
export function watchImpression(
  element: unknown, onSeen: (seconds: number) => void,
  observerFactory: ObserverFactory | undefined = typeof IntersectionObserver === "undefined"
    ? undefined : (callback, options) => new IntersectionObserver(callback as IntersectionObserverCallback, options),
  now: () => number = Date.now,
): () => void {
  if (!observerFactory) return () => {};
  let since = 0, timer: ReturnType<typeof setTimeout> | null = null, done = false;
  const stopTimer = () => { if (timer !== null) clearTimeout(timer); timer = null; };
  const observer = observerFactory((entries) => {
    const entry = entries[entries.length - 1];
    if (done || !entry) return;
    if (entry.intersectionRatio >= VISIBLE_RATIO) {
      if (!since) since = now();
      timer ??= setTimeout(() => {
        done = true;
        observer.disconnect();
        onSeen(+((now() - since) / 1000).toFixed(1));
      }, SEEN_AFTER_MS);
    } else {
      since = 0;
      stopTimer();
    }
  }, { threshold: [0, VISIBLE_RATIO] });
  observer.observe(element);
  return () => { stopTimer(); observer.disconnect(); };
}

/** The data-tl-* attributes SSR pages put on a decided block, so tracker.js on the same page
 * (if any) and editors' tools read the same facts. */
export function decisionAttributes(decision: Decision): Record<string, string> {
  const attributes: Record<string, string> = { "data-tl-block-id": decision.block, "data-tl-variant": decision.variant };
  if (decision.experiment) attributes["data-tl-experiment"] = decision.experiment;
  if (decision.arm) attributes["data-tl-arm"] = decision.arm;
  return attributes;
}
