"""A headless frontend's view of the personalized homepage, over Tailored's GraphQL API.

It posts the persisted `homepage` operation by id (``{"id": "homepage"}``: the file stem of
graphql/operations/homepage.graphql, so it works where only persisted operations are accepted)
with the visitor's cookies and User-Agent, and prints the page's sections and the variant the
server chose for each personalized block: the same choice the server-rendered page makes for
that visitor.

    python examples/headless_client.py --url http://127.0.0.1:8000
    python examples/headless_client.py --url http://127.0.0.1:8000 --visitor '0123abcd...:1xZX...:VAMj...' --consent

A real frontend forwards its visitor's `tl_vid` and `tl_consent` cookies (and User-Agent) as
here, or calls from its server with the X-Tailored-* headers (docs on server-side visitors).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

# Tailored treats an empty or bot-like User-Agent (httpx's own included) as a bot: no profile.
DEFAULT_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
CONSENT_GRANTED = "analytics.personalization"


class GraphQLErrors(RuntimeError):
    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("; ".join(f"{e.get('message')} ({e.get('extensions', {}).get('code')})" for e in errors))
        self.errors = errors


def fetch_homepage(
    base_url: str,
    cookies: dict[str, str] | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """The homepage as the visitor with these cookies sees it: the `page` object of the
    `homepage` operation (id, title, body: each block with blockType; personalized blocks with
    `variant`, `variantLabel` and the chosen `blocks`). Raises GraphQLErrors on errors."""
    response = httpx.post(
        base_url.rstrip("/") + "/graphql/",
        json={"id": "homepage"},
        cookies=cookies or {},
        headers={"User-Agent": user_agent, "Accept": "application/json"},
        timeout=timeout,
    )
    body = response.json()
    if body.get("errors"):
        raise GraphQLErrors(body["errors"])
    response.raise_for_status()
    return body["data"]["page"]


def variant_keys(page: dict[str, Any]) -> list[str]:
    """The chosen variant of every personalized block, in page order (SSR's data-tl-variant)."""
    return [block["variant"] for block in page.get("body") or () if block.get("blockType") == "PersonalizedBlock"]


def describe(block: dict[str, Any]) -> str:
    """One line for a block: its type and its most telling text."""
    for key in ("heading", "text", "message", "value"):
        if block.get(key):
            text = " ".join(str(block[key]).split())
            return f"{block['blockType']}: {text[:70]}"
    return block["blockType"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the Tailored site")
    parser.add_argument("--visitor", help="the visitor's tl_vid cookie value as the site set it (signed: id:timestamp:signature)")
    parser.add_argument("--consent", action="store_true", help="send the personalization consent cookie")
    parser.add_argument("--user-agent", default=DEFAULT_USER_AGENT)
    parser.add_argument("--json", action="store_true", help="print the raw page JSON")
    args = parser.parse_args(argv)

    cookies = {}
    if args.visitor:
        cookies["tl_vid"] = args.visitor
    if args.consent:
        cookies["tl_consent"] = CONSENT_GRANTED
    try:
        page = fetch_homepage(args.url, cookies, args.user_agent)
    except (httpx.HTTPError, GraphQLErrors, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if page is None:
        print("error: no homepage at this site", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(page, indent=2))
        return 0

    print(f"{page['title']} (page {page['id']})")
    for number, block in enumerate(page.get("body") or (), 1):
        if block["blockType"] == "PersonalizedBlock":
            print(f"{number:>2}. personalized: variant {block['variant']} ({block.get('variantLabel') or 'fallback'})")
            for child in block.get("blocks") or ():
                print(f"      {describe(child)}")
        else:
            print(f"{number:>2}. {describe(block)}")
    print("variants:", " ".join(variant_keys(page)) or "(none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
