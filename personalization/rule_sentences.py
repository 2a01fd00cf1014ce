"""A segment's rule as a sentence an editor reads (issue 16 item 4): one renderer over the rule
JSON (`tailored.core.rules`) for every screen that shows a rule to people: the ?explain=1 panel,
the persona-to-segment view and GraphQL's `visitor { explain }`.

    sentence({"all": [
        {"count": {"event": "page_view", "category": "electronics", "within_hours": 24}, "op": "gte", "value": 3},
        {"field": "context.device", "op": "eq", "value": "mobile"},
    ]})
    == "Visitors who viewed electronics products at least 3 times in the last 24 hours and are on a mobile device."

Every condition kind has words: field conditions with each operator (`score.<name>` and CRM traits,
`trait.<key>`, "whose CRM loyalty tier is gold or platinum", too), windowed
counts (event, category or item, hours), average dwell, product-view sequences, abandoned carts,
and `all` / `any` / `not` groups at any depth. A `not` is pushed down to the conditions (De
Morgan), so the sentence never says "not (...)": "who did not view ...", "whose persona is not ...".
A nested group sits in parentheses. Field names and operators read as the rule builder labels
them (`forms.field_label`, `forms.OPERATOR_LABELS`).

`saw` puts into words what a condition saw for one visitor (the `saw` of a rule's explanation):
"3 times", "mobile", "not known".

Nothing here raises: a node the renderer does not know (a rule from a newer version) reads as its
JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tailored.core.fields import FLAG, SCORE_PREFIX, TEXTS, TIME, TRAIT_PREFIX, lookup
from tailored.forms import OPERATOR_LABELS, field_label

WEEKDAY_NAMES = {
    "mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
    "fri": "Friday", "sat": "Saturday", "sun": "Sunday",
}
# What a visitor did, per event type: (past tense, what it is done to unless narrowed).
EVENT_VERBS: dict[str, tuple[str, str]] = {
    "page_view": ("viewed", "pages"),
    "add_to_cart": ("added", "products"),
    "remove_from_cart": ("removed", "products"),
    "purchase": ("bought", "something"),
    "search": ("searched", ""),
    "click": ("clicked", ""),
    "scroll_depth": ("scrolled down", "pages"),
    "dwell": ("spent time on", "pages"),
    "recommendation_feedback": ("rated", "recommendations"),
    "video_play": ("played", "videos"),
    "video_pause": ("paused", "videos"),
    "filter_change": ("changed", "filters"),
    "form_submit": ("submitted", "forms"),
}
CART_EVENTS = {"add_to_cart": " to the cart", "remove_from_cart": " from the cart"}
# Negating a count inverts its comparison: counts are never unknown, so this is exact.
INVERSE = {"eq": "ne", "ne": "eq", "gt": "lte", "gte": "lt", "lt": "gte", "lte": "gt", "in": "not_in", "not_in": "in"}
WHO, WHOSE = "who ", "whose "


def sentence(rule: object) -> str:
    """The whole rule: "Visitors who ... and whose ...". """
    return f"Visitors {clause(rule)}."


def clause(node: object, negated: bool = False) -> str:
    """One node (a group or a condition) as a relative clause: "who ...", "whose ..." or, for a
    group, its children joined by "and" / "or"."""
    if not isinstance(node, Mapping):
        return _unknown(node)
    for kind in ("all", "any"):
        if isinstance(node.get(kind), list) and node[kind]:
            # not(all) = any(not ...), not(any) = all(not ...)
            joiner = " and " if (kind == "all") != negated else " or "
            return _join([_nested(child, negated) for child in node[kind]], joiner)
    if "not" in node:
        return clause(node["not"], not negated)
    for name, render in LEAVES.items():
        if name in node:
            try:
                return render(node, negated)
            except (TypeError, ValueError, KeyError, AttributeError, IndexError):
                return _unknown(node)
    return _unknown(node)


def _nested(child: object, negated: bool) -> str:
    text = clause(child, negated)
    is_group = isinstance(child, Mapping) and _group_of(child) is not None
    return f"({text})" if is_group and _group_of(child) != "single" else text


def _group_of(node: Mapping) -> str | None:
    """"all"/"any" for a group of several conditions, "single" for a group of one or a `not`
    (it reads as its condition), None for a condition."""
    for kind in ("all", "any"):
        children = node.get(kind)
        if isinstance(children, list) and children:
            return kind if len(children) > 1 else "single"
    if "not" in node:
        inner = node["not"]
        return _group_of(inner) if isinstance(inner, Mapping) else None
    return None


def _join(parts: Sequence[str], joiner: str) -> str:
    """Parts joined; a "who" right after another "who" is left out: "who viewed ... and are on"."""
    out = [parts[0]]
    for previous, part in zip(parts, parts[1:], strict=False):
        if part.startswith(WHO) and previous.startswith(WHO):
            part = part[len(WHO):]
        out.append(part)
    return joiner.join(out)


# Conditions -------------------------------------------------------------------------------------


def _field(node: Mapping[str, Any], negated: bool) -> str:
    name, op, value = node["field"], node["op"], node.get("value")
    spec = lookup(name)
    special = _context_clause(name, op, value, negated)
    if special:
        return special
    if spec is not None and spec.kind == FLAG:
        return _flag_clause(name, op, value, negated)
    subject = _score_label(name) if name.startswith(SCORE_PREFIX) else _subject(name)
    plural = _is_plural(subject)
    texts = spec is not None and spec.kind == TEXTS
    return f"{WHOSE}{subject} {_comparison(op, value, plural or texts, negated, texts, name)}"


def _context_clause(name: str, op: str, value: Any, negated: bool) -> str | None:
    """Device, daypart and weekday read as what the visitor does: "are on a mobile device"."""
    if op not in ("eq", "ne", "in", "not_in"):
        return None
    values = value if isinstance(value, list) else [value]
    negative = negated != (op in ("ne", "not_in"))
    if name == "context.device":
        return f"{WHO}{'are not' if negative else 'are'} on a {_or(values)} device"
    if name == "context.daypart":
        when = _or(["at night" if v == "night" else f"in the {v}" for v in values])
        return f"{WHO}{'do not visit' if negative else 'visit'} {when}"
    if name == "context.weekday":
        days = _or([WEEKDAY_NAMES.get(str(v), str(v)) for v in values])
        return f"{WHO}{'do not visit' if negative else 'visit'} on {days}"
    if name == "context.country" or name == "context.region":
        return f"{WHO}{'are not' if negative else 'are'} in {_or(values)}"
    return None


# Flags that read as what the visitor is or did: (when it holds, when it does not).
FLAG_WORDS = {
    "profile.session_converted": ("converted this session", "have not converted this session"),
    "user.logged_in": ("are logged in", "are not logged in"),
    "user.is_staff": ("have a staff account", "do not have a staff account"),
}


def _flag_clause(name: str, op: str, value: Any, negated: bool) -> str:
    holds = (value is True) == (op == "eq") != negated
    if name in FLAG_WORDS:
        return f"{WHO}{FLAG_WORDS[name][0 if holds else 1]}"
    return f"{WHOSE}{_subject(name)} is {'yes' if holds else 'no'}"


def _subject(name: str) -> str:
    """A field as the subject of "whose ...": a CRM trait says where it comes from (issue 20)."""
    label = _lower(field_label(name))
    return f"CRM {label}" if name.startswith(TRAIT_PREFIX) else label


def _count(node: Mapping[str, Any], negated: bool) -> str:
    spec, op, value = node["count"], node["op"], node["value"]
    event = spec["event"]
    verb, target = EVENT_VERBS.get(event, (f"did \u201c{event}\u201d", ""))
    if "page" in spec:
        target = page_name(spec["page"])
    elif "section" in spec:
        target = f"pages in {page_name(spec['section'])}"
    elif "item" in spec:
        target = f"product {spec['item']}"
    elif "category" in spec and event in ("page_view", *CART_EVENTS):
        target = f"{_slug_words(spec['category'])} products"
    elif "category" in spec:
        target = f"{target} in {_slug_words(spec['category'])}".strip()
    elif event in CART_EVENTS:
        target = "products"
    target = f"{target}{CART_EVENTS.get(event, '')}"
    if negated:
        op, value = (op, value) if op == "between" else (INVERSE[op], value)
    times = _between_times(value, negated) if op == "between" else _times(op, value)
    words = " ".join(part for part in (verb, target, times, _within_hours(spec["within_hours"])) if part)
    return f"{WHO}{words}"


def page_name(page_id: Any) -> str:
    """A page as an editor knows it: its title ("page “About us”"), or its id if it is gone."""
    from wagtail.models import Page

    try:
        title = Page.objects.filter(pk=int(page_id)).values_list("title", flat=True).first()
    except (TypeError, ValueError):
        title = None
    return f"page \u201c{title}\u201d" if title else f"page {page_id}"


def _avg_dwell(node: Mapping[str, Any], negated: bool) -> str:
    category = _slug_words(node["avg_dwell"]["category"])
    comparison = _comparison(node["op"], node["value"], False, negated, False, "", unit="seconds")
    return f"{WHOSE}average time on {category} pages per visit {comparison}"


def _sequence(node: Mapping[str, Any], negated: bool) -> str:
    spec = node["sequence"]
    views, minutes = int(spec["views"]), int(spec["within_minutes"])
    verb = "did not view" if negated else "viewed"
    products = "product" if views == 1 else "products"
    return f"{WHO}{verb} at least {views} {products} in the last {_duration(minutes)}"


def _cart_abandoned(node: Mapping[str, Any], negated: bool) -> str:
    idle = _duration(int(node["cart_abandoned"]["idle_minutes"]))
    verb = "have not left" if negated else "left"
    return f"{WHO}{verb} items in their cart for at least {idle} without buying"


LEAVES = {
    "field": _field,
    "count": _count,
    "avg_dwell": _avg_dwell,
    "sequence": _sequence,
    "cart_abandoned": _cart_abandoned,
}


# Comparisons ------------------------------------------------------------------------------------


def _op_words(op: str) -> str:
    """The rule builder's label without its hint: "is one of (a, b, ...)" reads "is one of"."""
    return OPERATOR_LABELS.get(op, op).partition(" (")[0]


def _comparison(
    op: str, value: Any, plural: bool, negated: bool, texts: bool, name: str, unit: str = ""
) -> str:
    """"is at least 3", "are not more than 2", "include “42”", "matches the pattern “^a”"."""
    be, not_be = ("are", "are not") if plural else ("is", "is not")
    shown = _value(value, name, unit)
    if op == "present":
        there = (value is not False) != negated
        return f"{be} {'present' if there else 'absent'}" if not texts else f"{'are' if there else 'are not'} known"
    if op == "contains_any":
        return f"{'do not include' if negated else 'include'} {_or([_value(v, name, unit) for v in value])}"
    if op == "contains":
        verb = ("include" if texts else "contain") if plural else "contains"
        if negated:
            verb = f"{'do' if plural else 'does'} not {'include' if texts else 'contain'}"
        return f"{verb} {shown}"
    if op == "matches":
        return f"{'does not match' if negated else _op_words(op)} {shown}"
    if op in ("eq", "ne", "in", "not_in"):
        positive = (op in ("eq", "in")) != negated
        if op in ("in", "not_in") and isinstance(value, list) and len(value) > 1 and not positive:
            shown_each = [_value(v, name, unit) for v in value]
            if len(value) == 2:
                return f"{be} neither {shown_each[0]} nor {shown_each[1]}"
            return f"{_op_words('not_in').replace('is', be, 1)} {_or(shown_each)}"  # "is none of"
        return f"{be if positive else not_be} {shown}"
    if op == "between" and isinstance(value, list):
        return f"{not_be if negated else be} between {_value(value[0], name, unit)} and {_value(value[1], name, unit)}"
    return f"{not_be if negated else be} {_op_words(op)} {shown}"


def _times(op: str, value: Any) -> str:
    if op in ("in", "not_in") and isinstance(value, list):
        counted = _or([_count_of(v) for v in value])
        return counted + " times" if op == "in" else f"a number of times other than {counted}"
    if op == "eq":
        return _count_times(value) if value else "not at all"
    if op == "ne":
        return f"a number of times other than {_count_of(value)}"
    if (op == "lt" and value == 1) or (op == "lte" and value == 0):
        return "not at all"
    if op == "lt":
        return f"fewer than {_count_times(value)}"
    return f"{_op_words(op)} {_count_times(value)}"


def _between_times(value: Any, negated: bool) -> str:
    low, high = value
    if negated:
        fewer = "not at all" if low == 1 else f"fewer than {_count_times(low)}"
        return f"{fewer} or more than {_count_times(high)}"
    return f"between {_count_of(low)} and {_count_of(high)} times"


def _count_times(n: Any) -> str:
    return "once" if n == 1 else f"{_count_of(n)} times"


def _count_of(n: Any) -> str:
    return f"{n:g}" if isinstance(n, float) else str(n)


def _within_hours(hours: Any) -> str:
    hours = int(hours)
    if hours == 1:
        return "in the last hour"
    if hours > 48 and hours % 24 == 0:
        return f"in the last {hours // 24} days"
    return f"in the last {hours} hours"


def _duration(minutes: int) -> str:
    if minutes % 1440 == 0:
        days = minutes // 1440
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


# Values -----------------------------------------------------------------------------------------


def _value(value: Any, name: str = "", unit: str = "") -> str:
    if isinstance(value, list):
        return _or([_value(v, name, unit) for v in value])
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        number = f"{value:g}" if isinstance(value, float) else str(value)
        return f"{number} {unit}".strip()
    spec = lookup(name)
    if spec is not None and spec.kind == TIME:
        return str(value)
    if spec is not None and spec.choices and value in spec.choices:
        return WEEKDAY_NAMES.get(value, value) if name == "context.weekday" else str(value)
    if name in ("context.country", "context.region"):
        return str(value)
    return f"\u201c{value}\u201d"


def _or(values: Sequence[Any]) -> str:
    words = [str(v) for v in values]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _lower(label: str) -> str:
    """"Page views" -> "page views"; an acronym keeps its capitals ("UTM source")."""
    return label if label[1:2].isupper() else label[:1].lower() + label[1:]


def _is_plural(subject: str) -> bool:
    words = subject.split()
    return any(w.endswith("s") and not w.endswith("ss") for w in (words[0], words[-1])) if words else False


def _score_label(name: str) -> str:
    return f"{_lower(field_label(name))} score"


def _slug_words(slug: Any) -> str:
    return str(slug).replace("-", " ").replace("_", " ")


def _unknown(node: object) -> str:
    try:
        return f"{WHO}match {json.dumps(node, sort_keys=True)}"
    except (TypeError, ValueError):
        return f"{WHO}match {node!r}"


# What a condition saw ---------------------------------------------------------------------------


def saw(condition: object, seen: Any) -> str:
    """What one condition saw for a visitor, in words: "2 times", "mobile", "not known"."""
    if not isinstance(condition, Mapping):
        return _plain_seen(seen)
    if "count" in condition:
        return _count_times(seen) if seen else "0 times"
    if "sequence" in condition:
        return f"{_count_of(seen)} product{'s' if seen != 1 else ''} viewed" if seen is not None else "not known"
    if "cart_abandoned" in condition:
        return "no abandoned cart" if seen is None else f"cart unchanged for {_duration(max(0, int(seen // 60)))}"
    if "avg_dwell" in condition:
        return "no visits yet" if seen is None else f"{_count_of(round(seen, 1))} seconds"
    name = condition.get("field", "")
    if seen is None or seen == [] or seen == ():
        return "nothing yet" if lookup(name) is not None and lookup(name).kind == TEXTS else "not known"
    if isinstance(seen, (list, tuple)):
        return ", ".join(str(v) for v in list(seen)[:10]) + ("…" if len(seen) > 10 else "")
    if name == "context.weekday":
        return WEEKDAY_NAMES.get(seen, str(seen))
    return _plain_seen(seen)


def _plain_seen(seen: Any) -> str:
    if seen is None:
        return "not known"
    if isinstance(seen, bool):
        return "yes" if seen else "no"
    if isinstance(seen, float):
        return f"{round(seen, 3):g}"
    return str(seen)


def condition_words(condition: object) -> str:
    """One condition on its own, as a list item under the sentence: "viewed electronics products
    at least 3 times in the last 24 hours", "sessions are at most 1"."""
    text = clause(condition)
    for pronoun in (WHOSE, WHO):
        if text.startswith(pronoun):
            return text[len(pronoun):]
    return text


def group_words(kind: str) -> str:
    """A group of the explain panel in words."""
    return {"all": "All of these", "any": "At least one of these", "not": "Not this"}.get(kind, kind)
