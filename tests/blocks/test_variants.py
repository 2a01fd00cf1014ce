"""PersonalizedBlock in full: every tag kind stored as slugs or codes, the schedule, the summary
label of a collapsed variant, validation, and choosing without a query."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from wagtail.blocks import StructBlockValidationError

from tailored.blocks.personalized import PersonalizedBlock, summary_label
from tailored.core.types import EMPTY_PROFILE, Consent, Context, Visitor

pytestmark = pytest.mark.django_db  # segment names and choices come from the Segment table

BLOCK = PersonalizedBlock()
VARIANT = BLOCK.child_blocks["variants"].child_block
START = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
END = datetime(2030, 6, 8, 9, 0, tzinfo=UTC)


def cta(text):
    return [{"type": "cta", "value": {"text": text, "button_label": "Go", "url": "/", "style": "primary"}}]


def variant(key, **tags):
    value = {"label": "", "segments": [], "devices": [], "dayparts": [], "content": cta(key), **tags}
    return {"type": "item", "id": key, "value": value}


def block_value(*variants):
    return BLOCK.to_python({"variants": list(variants), "fallback": cta("everyone")})


def visitor(segments=(), **context):
    return Visitor(id=None, consent=Consent(), context=Context(**context), profile=EMPTY_PROFILE, segments=frozenset(segments))


def test_every_context_tag_and_the_schedule_drive_the_choice():
    value = block_value(
        variant("summer", starts_at=START.isoformat(), ends_at=END.isoformat()),
        variant("gb-rain", regions=["GB"], weather=["rain"]),
        variant("weekend-campaign", weekdays=["sat", "sun"], campaigns=["spring-sale"]),
    )
    in_june = START.timestamp() + 60
    assert BLOCK.choose(value, visitor(), now=in_june).key == "summer"
    assert BLOCK.choose(value, visitor(), now=END.timestamp()).key == "fallback"
    assert BLOCK.choose(value, visitor(country="GB", region="GB-SCT", weather="rain")).key == "gb-rain"
    assert BLOCK.choose(value, visitor(country="US", weather="rain")).key == "fallback"
    assert BLOCK.choose(value, visitor(weekday="sun", utm_campaign="spring-sale")).key == "weekend-campaign"
    assert BLOCK.choose(value, visitor(weekday="mon", utm_campaign="spring-sale")).key == "fallback"


def test_choosing_with_every_tag_kind_costs_no_query():
    value = block_value(
        variant("all", segments=["electronics-fans"], devices=["mobile"], dayparts=["morning"], weekdays=["mon"],
                regions=["GB"], weather=["rain"], campaigns=["x"], starts_at=START.isoformat()),
    )
    with CaptureQueriesContext(connection) as queries:
        assert BLOCK.choose(value, visitor()).key == "fallback"
    assert len(queries) == 0


def test_codes_are_normalised_and_validated_on_save():
    regions, campaigns = VARIANT.child_blocks["regions"], VARIANT.child_blocks["campaigns"]
    assert regions.clean(regions.value_from_form("gb, us-ca ,GB")) == ["GB", "US-CA"]
    assert regions.value_for_form(["GB", "US-CA"]) == "GB, US-CA"
    assert campaigns.clean(campaigns.value_from_form("Spring Sale 2030, black_friday")) == ["spring-sale-2030", "black_friday"]
    with pytest.raises(ValidationError, match="not an ISO country or region code"):
        regions.clean(regions.value_from_form("England"))


def test_the_end_must_come_after_the_start():
    value = VARIANT.to_python(variant("v", starts_at=END.isoformat(), ends_at=START.isoformat())["value"])
    with pytest.raises(StructBlockValidationError) as caught:
        VARIANT.clean(value)
    assert "ends_at" in caught.value.block_errors


def test_the_summary_label_names_the_audience():
    names = {"cart-abandoners": "Cart abandoners", "electronics-fans": "Electronics fans"}
    assert summary_label({"segments": ["cart-abandoners"], "devices": ["mobile"]}, names) == "Cart abandoners · mobile"
    assert summary_label(
        {"segments": ["cart-abandoners", "electronics-fans"], "dayparts": ["morning", "evening"], "weekdays": ["sat"],
         "regions": ["GB", "US-CA"], "weather": ["rain"], "campaigns": ["spring-sale"]},
        names,
    ) == "Cart abandoners or Electronics fans · morning or evening · Sat · GB or US-CA · rain · campaign spring-sale"
    assert summary_label({"label": "App promo", "devices": ["mobile"]}, names) == "App promo: mobile"
    assert summary_label({"label": "Electronics fans", "segments": ["electronics-fans"]}, names) == "Electronics fans"
    assert summary_label({}, names) == "Everyone (no targeting)"
    assert "from 1 Jun 2030" in summary_label({"starts_at": START}, names)


def test_saving_a_variant_stores_its_summary_and_the_form_shows_it():
    value = VARIANT.to_python(variant("v", segments=["cart-abandoners"], devices=["mobile"])["value"])
    assert VARIANT.clean(value)["summary"] == "Cart abandoners · mobile"
    # Variants saved before the summary existed still get a collapsed label in the editor.
    assert VARIANT.get_form_state(value)["summary"] == "Cart abandoners · mobile"
    assert VARIANT.meta.label_format == "{summary}"
    assert BLOCK.child_blocks["variants"].meta.collapsed is True


def test_a_fallback_is_still_required_with_a_message_that_says_why():
    value = BLOCK.to_python({"variants": [variant("v", devices=["mobile"])], "fallback": []})
    with pytest.raises(StructBlockValidationError) as caught:
        BLOCK.clean(value)
    assert "Add fallback content" in caught.value.block_errors["fallback"].non_block_errors.as_data()[0].message


def test_unknown_segments_are_rejected_on_save():
    value = VARIANT.to_python(variant("v", segments=["no-such-segment"])["value"])
    with pytest.raises(StructBlockValidationError):
        VARIANT.clean(value)


def test_a_weekly_schedule_in_the_visitors_time_drives_the_choice():
    value = block_value(
        variant("commute", repeat_from="08:30:00", repeat_until="10:00:00", repeat_on=["mon", "tue", "wed", "thu", "fri"]),
        variant("late", repeat_from="22:00", repeat_until="02:00", repeat_zone="visitor"),
    )
    assert BLOCK.choose(value, visitor(weekday="tue", local_minute=9 * 60)).key == "commute"
    assert BLOCK.choose(value, visitor(weekday="sat", local_minute=9 * 60)).key == "fallback"
    assert BLOCK.choose(value, visitor(weekday="tue", local_minute=10 * 60)).key == "fallback"
    assert BLOCK.choose(value, visitor(weekday="sun", local_minute=60)).key == "late"  # Saturday night, any day


def test_a_weekly_schedule_in_the_sites_zone_reads_the_clock(settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    value = block_value(variant("lunch", repeat_from="12:00", repeat_until="13:00", repeat_zone="site"))
    monday_noon_tokyo = datetime(2030, 6, 3, 3, 15, tzinfo=UTC).timestamp()
    assert BLOCK.choose(value, visitor(weekday="sun", local_minute=0), now=monday_noon_tokyo).key == "lunch"
    assert BLOCK.choose(value, visitor(), now=monday_noon_tokyo + 3600).key == "fallback"


@pytest.mark.parametrize(
    ("tags", "field"),
    [({"repeat_from": "08:30"}, "repeat_until"), ({"repeat_from": "08:30", "repeat_until": "08:30"}, "repeat_until"),
     ({"repeat_on": ["mon"]}, "repeat_from")],
)
def test_a_weekly_schedule_needs_two_different_times(tags, field):
    value = VARIANT.to_python(variant("v", **tags)["value"])
    with pytest.raises(StructBlockValidationError) as caught:
        VARIANT.clean(value)
    assert field in caught.value.block_errors


def test_the_summary_names_the_weekly_schedule():
    weekly = {"repeat_from": "08:30", "repeat_until": "10:00", "repeat_on": ["mon", "fri"], "repeat_zone": "site"}
    assert summary_label(weekly, {}) == "Mon, Fri 08:30-10:00 (site time)"
    assert summary_label({"repeat_from": "22:00", "repeat_until": "02:00"}, {}) == "every day 22:00-02:00 (visitor's time)"
