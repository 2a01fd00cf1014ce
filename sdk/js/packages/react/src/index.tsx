// @tailored/react: a provider for a @tailored/client, the personalized page (rendered on the
// server, so the variant is in the first HTML and nothing flickers), event tracking, and a
// <TailoredBlock> that reports its impression and first click with the block's decision.

import { createContext, createElement, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import type { Decision, PersonalizedPage, TailoredClient, TailoredError } from "@tailored/client";

import { decisionAttributes, watchImpression, type ObserverFactory } from "./impressions.js";

export { decisionAttributes, watchImpression, SEEN_AFTER_MS, VISIBLE_RATIO, type ObserverFactory } from "./impressions.js";

interface TailoredState {
  client: TailoredClient | null;
  /** Pages already resolved (on the server, passed down as props), by URL path. */
  pages: Record<string, PersonalizedPage>;
  observerFactory?: ObserverFactory;
}

const TailoredContext = createContext<TailoredState>({ client: null, pages: {} });

export interface TailoredProviderProps {
  /** The client for this visitor (in the browser: createClient with the site's endpoint). */
  client: TailoredClient | null;
  /** Pages the server resolved for this request, by path: usePersonalizedPage starts from them. */
  pages?: Record<string, PersonalizedPage>;
  /** For tests, or a polyfill: how to observe visibility (default: IntersectionObserver). */
  observerFactory?: ObserverFactory;
  children?: ReactNode;
}

export function TailoredProvider({ client, pages = {}, observerFactory, children }: TailoredProviderProps) {
  return createElement(TailoredContext.Provider, { value: { client, pages, observerFactory } }, children);
}

export interface PersonalizedPageState {
  page: PersonalizedPage["page"];
  decisions: Decision[];
  error: TailoredError | null;
  loading: boolean;
}

/** The page at `urlPath` for this visitor: the server's answer when the provider has it (no
 * request, no flicker), else fetched once with the provider's client. */
export function usePersonalizedPage(urlPath: string): PersonalizedPageState {
  const { client, pages } = useContext(TailoredContext);
  const initial = pages[urlPath];
  const [state, setState] = useState<PersonalizedPageState>(() =>
    initial ? { page: initial.page, decisions: initial.decisions, error: null, loading: false } : { page: null, decisions: [], error: null, loading: true });
  useEffect(() => {
    if (initial || !client) return;
    let current = true;
    void client.getPage(urlPath).then((answer) => {
      if (!current) return;
      setState(answer.ok
        ? { page: answer.value.page, decisions: answer.value.decisions, error: null, loading: false }
        : { page: null, decisions: [], error: answer.error, loading: false });
    });
    return () => { current = false; };
  }, [client, urlPath, initial]);
  return state;
}

/** `track(events)` with the provider's client (a no-op answer without one, e.g. on the server). */
export function useTrack(): TailoredClient["track"] {
  const { client } = useContext(TailoredContext);
  return useCallback<TailoredClient["track"]>(
    (events) => client ? client.track(events) : { ok: false, error: { kind: "invalid", code: "no_client", message: "no Tailored client in this tree", retryable: false } },
    [client],
  );
}

export interface TailoredBlockProps {
  decision: Decision | undefined;
  /** The element to render (default "div"). */
  as?: string;
  /** The page's id, carried by the events (optional). */
  page?: number;
  className?: string;
  children?: ReactNode;
}

/** A decided block: rendered with its data-tl-* attributes; reports its impression (half in view
 * for a second, once) and the first click inside it, with its decision. */
export function TailoredBlock({ decision, as = "div", page, className, children }: TailoredBlockProps) {
  const { client, observerFactory } = useContext(TailoredContext);
  const element = useRef<Element | null>(null);
  useEffect(() => {
    if (!client || !decision || !element.current) return;
    return watchImpression(element.current, (seconds) => void client.impression(decision, seconds, page), observerFactory);
  }, [client, decision, page, observerFactory]);
  const onClick = (event: { target: unknown }) => {
    if (!client || !decision) return;
    const target = event.target as { closest?: (s: string) => Element | null } | null;
    const hit = target?.closest?.("[data-track],[id],a,button") as (Element & { dataset?: Record<string, string> }) | null | undefined;
    const name = hit?.dataset?.track || hit?.id || (hit?.tagName === "A" ? "link" : hit?.tagName?.toLowerCase()) || "block";
    client.click(name, decision, page);
  };
  return createElement(as, { ref: element, className, onClick, ...(decision ? decisionAttributes(decision) : {}) }, children);
}
