"""Run inside the fresh Wagtail site (copied there by the install test, run by the site's own
venv): give the home page one PersonalizedBlock, publish it, and fetch it as a phone and as a
desktop browser. Prints one line, TAILORED_CHECK_JSON=<json>, for the test to assert on.

Usage: python tailored_site_check.py ssr|graphql
"""

import json
import os
import sys
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings.dev")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from home.models import HomePage  # noqa: E402

import tailored  # noqa: E402

MOBILE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)

GRAPHQL_QUERY = """
query Home {
  page(urlPath: "/") {
    id
    title
    ... on HomePage {
      body {
        id
        blockType
        ... on PersonalizedBlock {
          variant
          variantLabel
          rawValue
          blocks {
            blockType
            rawValue
            ... on RichTextBlock { value }
          }
        }
      }
    }
  }
}
"""


def publish_personalized_home() -> HomePage:
    """The home page's body: one PersonalizedBlock, a mobile variant and a fallback, in the JSON
    shape Wagtail stores (and the editor's form produces), cleaned as the editor's save cleans it."""
    page = HomePage.objects.live().get(depth=2)
    stream_block = HomePage._meta.get_field("body").stream_block
    raw = {
        "variants": [
            {
                "type": "item",
                "id": str(uuid.uuid4()),
                "value": {
                    "label": "Phones",
                    "devices": ["mobile"],
                    "content": [{"type": "rich_text", "value": "<p>Mobile hello</p>", "id": str(uuid.uuid4())}],
                },
            }
        ],
        "fallback": [{"type": "rich_text", "value": "<p>Everyone hello</p>", "id": str(uuid.uuid4())}],
    }
    value = stream_block.to_python([{"type": "personalized", "value": raw, "id": str(uuid.uuid4())}])
    page.body = stream_block.clean(value)
    page.save_revision().publish()
    return page


def ssr() -> dict:
    from wagtail.models import Site

    page = publish_personalized_home()
    pages = {}
    for name, agent in (("mobile", MOBILE_UA), ("desktop", DESKTOP_UA)):
        response = Client(HTTP_USER_AGENT=agent).get("/")
        pages[name] = {"status": response.status_code, "html": response.content.decode(errors="replace")}
    return {
        "pages": pages,
        "page_url": page.get_url(),
        "sites": [str(site) for site in Site.objects.all()],
        "consent_url": reverse("tailored_frontend:consent"),
        "template_backends": [engine["BACKEND"] for engine in settings.TEMPLATES],
    }


def graphql() -> dict:
    publish_personalized_home()
    answers = {}
    for name, agent in (("mobile", MOBILE_UA), ("desktop", DESKTOP_UA)):
        response = Client(HTTP_USER_AGENT=agent).post(
            "/graphql/", data=json.dumps({"query": GRAPHQL_QUERY}), content_type="application/json"
        )
        body = response.content.decode(errors="replace")
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        answers[name] = {"status": response.status_code, "json": data, "text": body[:4000]}
    return {"answers": answers}


def main() -> None:
    import wagtail

    mode = sys.argv[1]
    report = {"ssr": ssr, "graphql": graphql}[mode]()
    report.update(
        tailored_file=tailored.__file__,
        django=django.get_version(),
        wagtail=wagtail.__version__,
        python=sys.version.split()[0],
        installed_apps=list(settings.INSTALLED_APPS),
    )
    print("TAILORED_CHECK_JSON=" + json.dumps(report))


if __name__ == "__main__":
    main()
