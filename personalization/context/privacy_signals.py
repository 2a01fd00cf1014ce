"""The browser's own privacy signals: Global Privacy Control (`Sec-GPC: 1`) and Do Not Track
(`DNT: 1`). Either one means the visitor opted out of tracking, whatever they answer a banner
(`tailored.services.consent_answer` is the one rule that applies it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OPT_OUT_HEADERS = ("HTTP_SEC_GPC", "HTTP_DNT")


def browser_opts_out(meta: Mapping[str, Any]) -> bool:
    """Whether the request carries `Sec-GPC: 1` or `DNT: 1` (request.META keys). A header sent
    twice reaches the app joined by a comma ("1, 1"): any "1" in it is the visitor's opt-out."""
    return any(_says_one(meta.get(key)) for key in OPT_OUT_HEADERS)


def _says_one(value: Any) -> bool:
    if not value:  # every request asks: most send neither header
        return False
    return any(part.strip() == "1" for part in str(value).split(","))
