// The browser's client posts persisted operations here; this server passes them to Tailored
// with the visitor's own tl_vid / tl_consent cookies, User-Agent and privacy signals (as a
// server-rendering frontend does), and hands back the cookies Tailored sets. Tailored refuses
// mutations a browser sends from another site, so the browser never calls it directly.
import { BROWSER_OPERATIONS, TAILORED_URL } from "../tailored";

const FORWARDED = ["user-agent", "sec-gpc", "dnt", "accept-language"];

export async function POST(request: Request): Promise<Response> {
  const text = await request.text();
  let id: unknown;
  try {
    id = JSON.parse(text)?.id;
  } catch {
    id = null;
  }
  if (typeof id !== "string" || !BROWSER_OPERATIONS.has(id)) {
    return Response.json({ errors: [{ message: "Unknown operation.", extensions: { code: "PERSISTED_QUERY_NOT_FOUND" } }] }, { status: 400 });
  }
  const headers = new Headers({ "Content-Type": "application/json", Accept: "application/json" });
  for (const name of FORWARDED) {
    const value = request.headers.get(name);
    if (value) headers.set(name, value);
  }
  const cookies = (request.headers.get("cookie") ?? "").split(";").map((c) => c.trim()).filter((c) => /^tl_(vid|consent)=/.test(c));
  if (cookies.length) headers.set("Cookie", cookies.join("; "));
  const answer = await fetch(`${TAILORED_URL}/graphql/`, { method: "POST", headers, body: text, cache: "no-store" });
  const response = new Response(await answer.text(), { status: answer.status, headers: { "Content-Type": "application/json" } });
  for (const cookie of answer.headers.getSetCookie()) response.headers.append("Set-Cookie", cookie);
  return response;
}
