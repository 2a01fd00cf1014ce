"""Triggers in the stream worker (issue 20 items 1-3), end to end against the session's real Redis,
the test database and a real local HTTP server: each kind fires once for a known visitor who
granted marketing, and never for anyone else; cool-downs, quiet hours, retries without duplicates."""

from __future__ import annotations

import json
import time
from datetime import time as clock_time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from cms.models import ProductPage
from tailored import conf, webhooks, worker
from tailored.activation import catalog, sending, triggers
from tailored.activation.models import ActivationSend, Destination
from tailored.core.types import Event
from tailored.models import Segment
from tests.activation.conftest import SECRET, drain, ingest, known, make_trigger, view, webhook

pytestmark = pytest.mark.django_db
ADA, BOB = "a" * 32, "b" * 32


def sends(**filters) -> list[ActivationSend]:
    return list(ActivationSend.objects.filter(test=False, **filters).order_by("created_at"))


def bodies(server) -> list[dict]:
    return [json.loads(body) for _method, _path, _headers, body in server.requests]


def electronics_fans() -> Segment:
    return Segment.objects.get(slug="electronics-fans")  # 3 electronics views in 24 hours


def test_segment_entry_fires_once_signed_and_only_for_a_known_marketing_visitor(activation, receiver):
    server = receiver(200)
    trigger = make_trigger(webhook(server.url + "/hook"), "segment_entered", segment=electronics_fans())
    known(ADA)
    known(BOB, marketing=False)
    for visitor in (ADA, BOB, "c" * 32):  # the third is not known at all
        ingest(visitor, view(1), view(2))
        assert not sends(visitor_id=visitor)  # two views: not in the segment yet
        ingest(visitor, view(3))
        ingest(visitor, view(4))  # still in it: no second firing

    [send] = sends()
    assert (send.visitor_id, send.trigger, send.status, send.attempts) == (ADA, trigger, "delivered", 1)
    [(method, path, headers, body)] = server.requests
    assert (method, path) == ("POST", "/hook")
    assert webhooks.verify_signature(SECRET, body, headers["X-Tailored-Signature"])
    assert headers["Idempotency-Key"] == send.idempotency_key
    payload = json.loads(body)
    assert payload["trigger"] == {"id": trigger.pk, "name": "segment_entered", "kind": "segment_entered"}
    assert payload["reason"] == {"segment": "electronics-fans"}
    # A webhook receives the pseudonymous id only: no address, no traits it did not ask for.
    assert set(payload) == {"idempotency_key", "trigger", "fired_at", "reason", "visitor_id"}
    assert payload["visitor_id"] == ADA


def test_a_visitor_already_in_the_segment_when_the_trigger_is_made_does_not_fire_until_they_re_enter(activation, receiver):
    server = receiver(200)
    known(ADA)
    ingest(ADA, view(1), view(2), view(3))  # in the segment before any trigger exists
    time.sleep(0.01)
    make_trigger(webhook(server.url), "segment_entered", segment=electronics_fans(), cooldown_hours=1)
    ingest(ADA, view(4))
    assert not sends()  # the first evaluation is a baseline: they were already in

    # Out of the segment (the views age past 24 hours), then back in: an entry.
    later = time.time() + 25 * 3600
    ingest(ADA, view(5, category="books", ts=later), now=later)
    ingest(ADA, *(view(n, ts=later) for n in (6, 7, 8)), now=later)
    assert [send.payload["reason"] for send in sends()] == [{"segment": "electronics-fans"}]


def test_leaving_a_segment_and_the_cool_down(activation, receiver):
    server = receiver(200)
    known(ADA)
    make_trigger(webhook(server.url), "segment_left", segment=electronics_fans(), cooldown_hours=48)
    now = time.time()
    ingest(ADA, view(1, ts=now), view(2, ts=now), view(3, ts=now), now=now)
    assert not sends()  # entering is not leaving
    ingest(ADA, view(4, "books", ts=now + 25 * 3600), now=now + 25 * 3600)
    assert len(sends()) == 1
    # In and out again within the 48-hour cool-down: no second send.
    ingest(ADA, *(view(n, ts=now + 26 * 3600) for n in (5, 6, 7)), now=now + 26 * 3600)
    ingest(ADA, view(8, "books", ts=now + 51 * 3600), now=now + 51 * 3600)
    assert len(sends()) == 1


def test_a_score_crossing_its_threshold_fires_once(activation, receiver):
    server = receiver(200)
    known(ADA)
    make_trigger(webhook(server.url), "score_above", params={"score": "churn_risk", "threshold": 0.7})
    store = conf.get_profile_store()
    ingest(ADA, view(1))
    store.set_model_outputs({ADA: (None, {"churn_risk": 0.4})})
    ingest(ADA, view(2))
    assert not sends()
    store.set_model_outputs({ADA: (None, {"churn_risk": 0.82})})
    ingest(ADA, view(3))
    ingest(ADA, view(4))
    [send] = sends()
    assert send.payload["reason"] == {"score": "churn_risk", "value": 0.82, "threshold": 0.7}
    assert len(server.requests) == 1


def cart(item: str, ts: float) -> Event:
    return Event(f"cart-{item}-{ts}", "add_to_cart", ts=ts, item=item, attrs={"quantity": 1})


def test_cart_abandonment_emails_the_cart_after_n_minutes(activation):
    product = ProductPage.objects.live().filter(in_stock=True).first()
    destination = Destination.objects.create(
        name="Shop email", kind="email", email_subject="You left {{ cart|length }} thing{{ cart|pluralize }} behind",
        email_body="{% for p in cart %}{{ p.title }} {{ p.price }}\n{% endfor %}",
    )
    make_trigger(destination, "cart_abandoned", params={"minutes": 30})
    known(ADA, email="ada@example.com")
    t0 = time.time()
    ingest(ADA, view(1, item=str(product.pk), ts=t0), cart(str(product.pk), t0 + 1), now=t0 + 1)
    drain(t0 + 29 * 60)
    assert not sends() and not mail.outbox  # not idle long enough yet
    drain(t0 + 31 * 60)
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == "You left 1 thing behind"
    assert message.body == f"{product.title} {float(product.price)}\n"
    [send] = sends()
    assert send.status == "delivered" and send.payload["reason"]["idle_minutes"] == 30
    drain(t0 + 90 * 60)
    assert len(mail.outbox) == 1  # checked once per cart change


def test_a_cart_bought_before_it_comes_due_sends_nothing(activation, receiver):
    server = receiver(200)
    make_trigger(webhook(server.url), "cart_abandoned", params={"minutes": 30})
    known(ADA)
    t0 = time.time()
    purchase = Event("order-1", "purchase", ts=t0 + 60, attrs={"order_id": "o1", "value": 12.5})
    ingest(ADA, cart("7", t0), purchase, now=t0 + 60)
    drain(t0 + 3600)
    assert not sends() and not server.requests


def test_browse_abandonment_after_k_views_without_a_cart(activation, receiver):
    server = receiver(200)
    make_trigger(webhook(server.url), "browse_abandoned", params={"views": 3, "minutes": 60})
    known(ADA)
    known(BOB)
    t0 = time.time()
    ingest(ADA, *(view(n, item="42", ts=t0 + n) for n in range(3)), now=t0 + 3)
    ingest(BOB, *(view(n, item="42", ts=t0 + n) for n in range(2)), now=t0 + 3)  # only twice
    drain(t0 + 3600 + 5)
    assert [(send.visitor_id, send.payload["reason"]) for send in sends()] == [(ADA, {"item": 42, "views": 3})]


def test_a_loyalty_milestone_fires_on_the_nth_purchase(activation, receiver):
    server = receiver(200)
    make_trigger(webhook(server.url), "loyalty_milestone", params={"purchases": 3})
    known(ADA)
    t0 = time.time()
    for n in range(1, 5):
        ingest(ADA, Event(f"order-{n}", "purchase", ts=t0 + n, attrs={"order_id": f"o{n}", "value": 20.0}), now=t0 + n)
        assert len(sends()) == (1 if n >= 3 else 0)
    assert sends()[0].payload["reason"] == {"purchases": 3, "lifetime_value": 60.0}


def test_back_in_stock_and_cheaper_reach_the_known_visitors_who_viewed_the_product(
    activation, receiver, django_capture_on_commit_callbacks
):
    server = receiver(200)
    hook = webhook(server.url)
    make_trigger(hook, "back_in_stock", params={"viewed_within_days": 7})
    make_trigger(hook, "price_drop", params={"viewed_within_days": 7})
    product = ProductPage.objects.live().filter(in_stock=True).first()
    known(ADA)
    ingest(ADA, view(1, item=str(product.pk)))
    ingest(BOB, view(2, item=str(product.pk)))  # viewed, but not known: nothing
    with django_capture_on_commit_callbacks(execute=True):
        product.in_stock = False
        product.save()
    drain()
    assert not sends()  # out of stock is no news
    with django_capture_on_commit_callbacks(execute=True):
        product.in_stock, product.price = True, product.price - 1
        product.save()
    drain()
    assert sorted(send.payload["trigger"]["kind"] for send in sends()) == ["back_in_stock", "price_drop"]
    assert {send.visitor_id for send in sends()} == {ADA}
    assert activation.llen(catalog.CATALOG_KEY) == 0


def test_quiet_hours_defer_a_send_to_their_end(activation, receiver):
    server = receiver(200)
    local_now = timezone.localtime()
    start = (local_now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local_now + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    make_trigger(webhook(server.url), "loyalty_milestone", params={"purchases": 1}, quiet_start=start, quiet_end=end)
    known(ADA)
    ingest(ADA, Event("order-1", "purchase", ts=time.time(), attrs={"order_id": "o1", "value": 5.0}))
    [send] = sends()
    assert send.status == "pending" and not server.requests
    assert timezone.localtime(send.next_attempt_at).time().replace(second=0) == clock_time(end.hour, end.minute)
    drain(send.next_attempt_at.timestamp() + 1)
    send.refresh_from_db()
    assert send.status == "delivered" and len(server.requests) == 1


def test_a_destination_outage_is_retried_without_a_duplicate(activation, receiver):
    server = receiver(503, 503, 200)
    make_trigger(webhook(server.url), "loyalty_milestone", params={"purchases": 1})
    known(ADA)
    purchase = Event("order-1", "purchase", ts=time.time(), attrs={"order_id": "o1", "value": 5.0})
    ingest(ADA, purchase)
    [send] = sends()
    assert (send.status, send.attempts, send.last_error) == ("pending", 1, "HTTP 503: receiver is down")
    # The worker died before acknowledging the batch: it is evaluated again, state unwritten.
    activation.delete(triggers.state_key(ADA))
    redelivered = worker.DecodedEntry(entry_id=send.idempotency_key.split(":")[-1], visitor_id=ADA, events=[purchase])
    assert triggers.observe(activation, [redelivered]) == 0
    for _ in range(2):
        send.refresh_from_db()
        drain(send.next_attempt_at.timestamp() + 1)
    [send] = sends()
    assert (send.status, send.attempts) == ("delivered", 3)
    keys = {headers["Idempotency-Key"] for _m, _p, headers, _b in server.requests}
    assert len(server.requests) == 3 and keys == {send.idempotency_key}


def test_a_destination_that_never_answers_ends_as_a_dead_letter_an_editor_can_retry(activation, receiver):
    server = receiver(500)
    make_trigger(webhook(server.url), "loyalty_milestone", params={"purchases": 1})
    known(ADA)
    ingest(ADA, Event("order-1", "purchase", ts=time.time(), attrs={"order_id": "o1", "value": 5.0}))
    for _ in range(2):
        [send] = sends()
        drain(send.next_attempt_at.timestamp() + 1)
    [send] = sends()
    assert (send.status, send.attempts) == ("failed", 3)
    server.statuses = [200]
    sending.retry(send)
    drain()
    send.refresh_from_db()
    assert send.status == "delivered" and len(server.requests) == 4


def test_withdrawing_marketing_skips_a_pending_send(activation, receiver, client):
    from tailored.activation import identity

    server = receiver(503)
    make_trigger(webhook(server.url), "loyalty_milestone", params={"purchases": 1})
    known(ADA)
    ingest(ADA, Event("order-1", "purchase", ts=time.time(), attrs={"order_id": "o1", "value": 5.0}))
    identity.withdraw_marketing(ADA)
    [send] = sends()
    assert (send.status, send.last_error) == ("skipped", "marketing consent withdrawn")
    drain(time.time() + 3600)
    assert len(server.requests) == 1  # only the attempt before the withdrawal
