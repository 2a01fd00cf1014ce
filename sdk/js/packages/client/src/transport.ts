// Posting committed operations by persisted id ({"id": "<file stem of graphql/operations/>"}), as
// examples/headless_client.py does, so the client works where the server runs persisted-only.

import { fail, ok, retryableStatus, type Result, type TailoredError } from "./errors.js";

/** The operations this client speaks: the file stems of graphql/operations/*.graphql. */
export const OPERATIONS = {
  homepage: "homepage",
  homepageProducts: "homepage_products",
  assignments: "assignments",
  visitor: "visitor",
  setConsent: "set_consent",
  trackEvents: "track_events",
  eraseMyData: "erase_my_data",
  recommendations: "recommendations",
  carousel: "carousel",
} as const;
export type OperationId = (typeof OPERATIONS)[keyof typeof OPERATIONS];

/** One personalized or experimental choice, as the server lists it in `extensions.decisions`. */
export interface Decision {
  block: string;
  variant: string;
  experiment?: string | null;
  arm?: string | null;
  holdout?: boolean;
}

export interface Answer<T> {
  data: T;
  decisions: Decision[];
  /** Set-Cookie values the site sent (pass them on to the visitor's browser in SSR). */
  setCookies: string[];
}

export interface TransportOptions {
  endpoint: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

interface GraphQLBody {
  data?: unknown;
  errors?: { message?: string; extensions?: { code?: string } }[];
  extensions?: { decisions?: Decision[] };
}

/** POST one persisted operation; every failure comes back as a typed error. */
export async function post<T>(
  options: TransportOptions, id: OperationId, variables: Record<string, unknown> | undefined,
  headers: Record<string, string>, keepalive = false,
): Promise<Result<Answer<T>>> {
  const send = options.fetch ?? globalThis.fetch;
  const body = JSON.stringify(variables ? { id, variables } : { id });
  let response: Response;
  try {
    response = await send(options.endpoint, {
      method: "POST", body, keepalive,
      headers: { "Content-Type": "application/json", Accept: "application/json", ...headers },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (error) {
    const name = (error as Error)?.name;
    return fail("network", name === "TimeoutError" ? "timeout" : "network_error", String((error as Error)?.message ?? error), true);
  }
  let parsed: GraphQLBody | null = null;
  try {
    parsed = (await response.json()) as GraphQLBody;
  } catch {
    parsed = null;
  }
  const first = parsed?.errors?.[0];
  if (first) {
    const error: TailoredError = {
      kind: "graphql", code: first.extensions?.code ?? "GRAPHQL_ERROR",
      message: parsed!.errors!.map((e) => e.message ?? "").join("; "), retryable: retryableStatus(response.status), status: response.status,
    };
    return { ok: false, error };
  }
  if (!response.ok || parsed === null || parsed.data === undefined || parsed.data === null) {
    return fail("http", `http_${response.status}`, `${response.status} ${response.statusText}`.trim(), retryableStatus(response.status), response.status);
  }
  const setCookies = typeof response.headers.getSetCookie === "function" ? response.headers.getSetCookie() : [];
  return ok({ data: parsed.data as T, decisions: parsed.extensions?.decisions ?? [], setCookies });
}
