"""What the page editor's browser posts, built on the server: a StreamField value turned into the
flat form data Wagtail's StreamField widget submits (count/type/id/order/deleted per child), so a
test can drive the real edit view with a page's existing content and change one thing in it."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.http import QueryDict
from wagtail import blocks
from wagtail.test.utils.form_data import querydict_from_html
from wagtail.test.utils.wagtail_tests import WagtailTestUtils

EDITOR = "editor"


def log_in_editor(client):
    client.force_login(get_user_model().objects.get(username=EDITOR))
    return client


def block_form_data(block: blocks.Block, value: Any, prefix: str) -> dict[str, Any]:
    """The form fields `block` posts for `value` under `prefix`, as the widget would."""
    if isinstance(block, blocks.StreamBlock):
        children = [(child.block_type, child.value, child.id) for child in value or ()]
        return _sequence(prefix, children, lambda name: block.child_blocks[name])
    if isinstance(block, blocks.ListBlock):
        children = [(None, child.value, child.id) for child in value.bound_blocks]
        return _sequence(prefix, children, lambda name: block.child_block)
    if isinstance(block, blocks.StructBlock):
        data = {}
        for name, child in block.child_blocks.items():
            data.update(block_form_data(child, value.get(name) if value is not None else None, f"{prefix}-{name}"))
        return data
    return _field(block, value, prefix)


def _sequence(prefix, children, child_block) -> dict[str, Any]:
    data: dict[str, Any] = {f"{prefix}-count": str(len(children))}
    for index, (block_type, value, block_id) in enumerate(children):
        item = f"{prefix}-{index}"
        data.update({f"{item}-id": block_id or "", f"{item}-order": str(index), f"{item}-deleted": ""})
        if block_type is not None:
            data[f"{item}-type"] = block_type
        data.update(block_form_data(child_block(block_type), value, f"{item}-value"))
    return data


def _field(block: blocks.Block, value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(block, blocks.ChooserBlock):
        # Choosers post the chosen object's primary key.
        pk = getattr(value, "pk", value)
        return {prefix: "" if pk is None else str(pk)}
    if isinstance(block, blocks.BooleanBlock):
        return {prefix: "on"} if value else {}
    state = block.get_form_state(value)
    if isinstance(state, (list, tuple)):
        return {prefix: [str(item) for item in state]}
    return {prefix: "" if state is None else str(state)}


def edit_form_data(client, page, **changes: Any) -> QueryDict:
    """Everything the edit form of `page` posts when the editor saves it untouched (the hidden
    inputs of the rendered form plus the body as the StreamField widget submits it), then `changes`."""
    page = fresh(page)
    html = client.get(f"/admin/pages/{page.pk}/edit/").content.decode()
    data = querydict_from_html(html, form_id="page-edit-form")
    body = type(page).body.field
    fields = {**block_form_data(body.stream_block, page.get_latest_revision_as_object().body, "body"), **changes}
    for name, value in fields.items():  # setlist: QueryDict.update would append to the form's own values
        data.setlist(name, value if isinstance(value, list) else [value])
    return data


def fresh(page):
    """The page as the database has it now (an instance caches its latest revision)."""
    return type(page).objects.get(pk=page.pk)


def personalized_prefix(page) -> str:
    """The form prefix of the page's first Personalized block ("body-0-value")."""
    body = fresh(page).get_latest_revision_as_object().body
    index = next(i for i, child in enumerate(body) if child.block_type == "personalized")
    return f"body-{index}-value"


def variant_block(page) -> blocks.StructBlock:
    return type(page).body.field.stream_block.child_blocks["personalized"].child_blocks["variants"].child_block


def add_variant(data: QueryDict, page, variant_id: str, content: list | None = None, **fields: Any) -> str:
    """Append a variant to the page's Personalized block as the editor's browser posts it: the
    block's empty fields, then `fields` exactly as typed (raw strings, unparsed); `content` is a
    list of raw stream children ({"type": "hero", "value": {...}}). Returns the variant's prefix."""
    variants = f"{personalized_prefix(page)}-variants"
    index = int(data[f"{variants}-count"])
    item = f"{variants}-{index}"
    block = variant_block(page)
    posted = block_form_data(block, block.to_python({"content": content or []}), f"{item}-value")
    posted.update({f"{item}-value-{name}": value for name, value in fields.items()})
    posted.update({f"{item}-id": variant_id, f"{item}-order": str(index), f"{item}-deleted": "", f"{variants}-count": str(index + 1)})
    for name, value in posted.items():
        data.setlist(name, value if isinstance(value, list) else [value])
    return item


def stream_state(html: str, field: str = "body") -> tuple[list, Any]:
    """The StreamField as the re-rendered editor shows it: (the blocks' form state, the errors),
    read from the widget's data attribute that Wagtail's JavaScript builds the form from."""
    soup = WagtailTestUtils.get_soup(html)
    widget = soup.find(attrs={"id": field, "data-w-block-arguments-value": True})
    state, *rest = json.loads(widget["data-w-block-arguments-value"])
    return state, rest[0] if rest else None
