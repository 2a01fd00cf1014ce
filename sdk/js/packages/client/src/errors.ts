// Errors as values: every call returns a Result, never throws for a refusal, an HTTP status or a
// network failure, so a server-rendered page can fall back to its default content in one branch.

export type ErrorKind =
  | "network" // the request did not complete (refused, reset, timed out)
  | "http" // an HTTP status other than 2xx without a GraphQL answer
  | "graphql" // the server answered with `errors` (a code in extensions.code)
  | "consent" // nothing was sent: the visitor has not consented, or their browser opts out
  | "invalid"; // the client was called with something it cannot send

export interface TailoredError {
  kind: ErrorKind;
  /** A stable code: the server's (PERSISTED_QUERY_NOT_FOUND, rate_limited...) or the client's own. */
  code: string;
  message: string;
  status?: number;
  /** Whether sending the same thing later may succeed (429, 5xx, network, rate_limited, unavailable). */
  retryable: boolean;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: TailoredError };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(kind: ErrorKind, code: string, message: string, retryable = false, status?: number): Result<T> =>
  ({ ok: false, error: status === undefined ? { kind, code, message, retryable } : { kind, code, message, retryable, status } });

/** HTTP statuses worth a retry, as tracker.js decides: 429 and 5xx may pass later; 400 or 403 never. */
export function retryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}
