"""A headless frontend's view of the personalized homepage, over Tailored's GraphQL API.

It posts the persisted `homepage` operation by id (``{"id": "homepage"}``: the file stem of
graphql/operations/homepage.graphql, so it works where only persisted operations are accepted)
with the visitor's cookies and User-Agent, and prints the page's sections and the variant the
server chose for each personalized block: the same choice the server-rendered page makes for
that visitor.

    python examples/headless_client.py --url http://127.0.0.1:8000
    python examples/headless_client.py --url http://127.0.0.1:8000 --visitor '0123abcd...:1xZX...:VAMj...' --consent

    python examples/headless_client.py --url http://127.0.0.1:8000 --gpc --accept   # recorded as declined

A real frontend forwards its visitor's `tl_vid` and `tl_consent` cookies, User-Agent and privacy
signals (`Sec-GPC`, `DNT`) as here, or calls from its server with the X-Tailored-* headers (then
`"gpc": true` in X-Tailored-Context carries the signals; docs on server-side visitors). Tailored
applies one consent rule to every path: under GPC or DNT an accept is recorded as declined.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

import httpx

# Tailored treats an empty or bot-like User-Agent (httpx's own included) as a bot: no profile.
DEFAULT_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
CONSENT_GRANTED = "analytics.personalization"
# The visitor's own headers a frontend passes on: the browser's privacy signals (Global Privacy
# Control, Do Not Track) must reach Tailored, or it would track a visitor who opted out.
FORWARDED_HEADERS = ("Sec-GPC", "DNT")


class GraphQLErrors(RuntimeError):
    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("; ".join(f"{e.get('message')} ({e.get('extensions', {}).get('code')})" for e in errors))
        self.errors = errors


def forwarded_headers(visitor_headers: Mapping[str, str] | None, user_agent: str) -> dict[str, str]:
    """The headers to send for the visitor: their User-Agent and whichever of Sec-GPC and DNT
    their browser sent (`visitor_headers`: the request the frontend received, any case)."""
    received = {name.lower(): value for name, value in (visitor_headers or {}).items()}
    headers = {"User-Agent": user_agent, "Accept": "application/json"}
    headers.update({name: received[name.lower()] for name in FORWARDED_HEADERS if name.lower() in received})
    return headers


def post_operation(
    base_url: str, operation: dict[str, Any], cookies: dict[str, str] | None = None,
    user_agent: str = DEFAULT_USER_AGENT, visitor_headers: Mapping[str, str] | None = None, timeout: float = 10.0,
) -> httpx.Response:
    """POST a persisted operation ({"id": ..., "variables": ...}) for the visitor."""
    return httpx.post(
        base_url.rstrip("/") + "/graphql/",
        json=operation,
        cookies=cookies or {},
        headers=forwarded_headers(visitor_headers, user_agent),
        timeout=timeout,
    )


def _data(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    if body.get("errors"):
        raise GraphQLErrors(body["errors"])
    response.raise_for_status()
    return body["data"]


def fetch_homepage(
    base_url: str,
    cookies: dict[str, str] | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
    timeout: float = 10.0,
    visitor_headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The homepage as the visitor with these cookies sees it: the `page` object of the
    `homepage` operation (id, title, body: each block with blockType; personalized blocks with
    `variant`, `variantLabel` and the chosen `blocks`). Raises GraphQLErrors on errors."""
    response = post_operation(base_url, {"id": "homepage"}, cookies, user_agent, visitor_headers, timeout)
    return _data(response)["page"]


def set_consent(
    base_url: str,
    analytics: bool,
    personalization: bool,
    cookies: dict[str, str] | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
    visitor_headers: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The banner's answer through the persisted `set_consent` operation: what was recorded
    ({granted, reason, message, errors}; reason "opted_out_by_browser" under GPC or DNT) and the
    cookies the site set (pass them on to the visitor's browser; an empty value deletes one)."""
    operation = {"id": "set_consent", "variables": {"analytics": analytics, "personalization": personalization}}
    response = post_operation(base_url, operation, cookies, user_agent, visitor_headers)
    return _data(response)["setConsent"], dict(response.cookies)


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
    parser.add_argument("--gpc", action="store_true", help="forward Sec-GPC: 1, as a visitor's browser with Global Privacy Control sends it")
    parser.add_argument("--dnt", action="store_true", help="forward DNT: 1 (Do Not Track)")
    parser.add_argument("--accept", action="store_true", help="first accept every consent category (setConsent) and print what was recorded")
    parser.add_argument("--json", action="store_true", help="print the raw page JSON")
    args = parser.parse_args(argv)

    cookies = {}
    if args.visitor:
        cookies["tl_vid"] = args.visitor
    if args.consent:
        cookies["tl_consent"] = CONSENT_GRANTED
    visitor_headers = {name: "1" for name, wanted in (("Sec-GPC", args.gpc), ("DNT", args.dnt)) if wanted}
    try:
        if args.accept:
            answer, set_cookies = set_consent(args.url, True, True, cookies, args.user_agent, visitor_headers)
            print(f"consent recorded: {', '.join(answer['granted']) or 'declined'}", f"({answer['message']})" if answer["reason"] else "")
            cookies.update({name: value for name, value in set_cookies.items() if value})
        page = fetch_homepage(args.url, cookies, args.user_agent, visitor_headers=visitor_headers)
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
