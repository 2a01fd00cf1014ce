"""The personalized and experimental decisions made while answering one request (issue 9, item 8).

Every PersonalizedBlock or ExperimentBlock a GraphQL response resolves is listed once in the
response's `extensions.decisions` as {block, variant, experiment, arm, holdout}: a headless frontend then
knows exactly what it was given and can report exposures for precisely that, without parsing the
content. SSR pages carry the same facts in their `data-tl-*` attributes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ATTRIBUTE = "_tailored_decisions"


@dataclass(frozen=True, slots=True)
class Decision:
    block: str  # the stream block's id
    variant: str  # the variant's key, "fallback", or an experiment arm's content key
    experiment: str | None = None  # the experiment that decided, if one did
    arm: str | None = None
    holdout: bool = False  # the visitor is in the global holdout: the fallback, whatever the rules


def record(request: Any, decision: Decision) -> None:
    """Remember a decision for this request (the first one per block: a block resolves once)."""
    if request is None:
        return
    decisions: dict[str, Decision] | None = getattr(request, ATTRIBUTE, None)
    if decisions is None:
        decisions = {}
        setattr(request, ATTRIBUTE, decisions)
    decisions.setdefault(decision.block, decision)


def of(request: Any) -> list[dict[str, Any]]:
    """This request's decisions in the order they were made, as JSON-ready dicts."""
    return [asdict(decision) for decision in getattr(request, ATTRIBUTE, {}).values()]
