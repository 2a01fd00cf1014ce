// The homepage, rendered on the server for the visitor of this request: Tailored chooses every
// personalized block's variant from the visitor's own cookies and User-Agent (the same choice as
// Wagtail's own server-rendered page), so the first HTML already holds it and nothing flickers.
import { headers } from "next/headers";
import { createClient } from "@tailored/client";

import { Homepage } from "./homepage";
import { TAILORED_URL } from "./tailored";

export const dynamic = "force-dynamic"; // one answer per visitor: never cache this page

export default async function Page() {
  const tailored = createClient({ endpoint: `${TAILORED_URL}/graphql/`, request: { headers: headers() } });
  const answer = await tailored.getPage("/", { products: true });
  if (!answer.ok) {
    return <p data-error={answer.error.code}>The shop is unavailable ({answer.error.kind}: {answer.error.message}).</p>;
  }
  return <Homepage initial={answer.value} />;
}
