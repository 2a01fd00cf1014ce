"""The recommendation block and GraphQL `recommendations` use the trained recommender from the
model registry, with business filters, and fall back to trending without a usable model."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from cms.models import ProductPage
from tailored import conf
from tailored.blocks import products as catalog
from tailored.core.types import Event
from tailored.ml import registry
from tailored.ml.catalog import demo_catalog
from tailored.ml.recommender import Interaction, train_recommender
from tests.helpers import consent_cookies

pytestmark = pytest.mark.django_db

OPERATIONS = Path(__file__).parents[2] / "graphql" / "operations"
VISITOR = "c" * 32


@pytest.fixture
def models_dir(settings, tmp_path):
    settings.PERSONALIZATION = {"PRODUCT_MODEL": "cms.ProductPage", "PROFILE_STORE": "tailored.profiles.memory.MemoryProfileStore", "MODEL_DIR": str(tmp_path)}
    return tmp_path


def pairs_model(pairs: list[tuple[str, str]], now: float):
    """A recommender trained on 40 visitors per pair who viewed both products of the pair."""
    interactions = [
        Interaction(f"v{n}-{a}-{b}", item, "view", now - 3600 + offset)
        for a, b in pairs
        for n in range(40)
        for offset, item in enumerate((a, b))
    ]
    return train_recommender(interactions, demo_catalog(), now=now, seed=1)


def viewed(visitor_id: str, *items: str) -> None:
    now = time.time()
    events = [Event(f"view-{item}", "page_view", ts=now - 10 + i, item=item, attrs={"page_type": "product"}) for i, item in enumerate(items)]
    conf.get_profile_store().record(visitor_id, events, now)


def ids(products) -> list[str]:
    return [str(product.pk) for product in products]


def test_a_visitor_gets_the_neighbours_of_what_they_viewed(models_dir):
    first, second, third, fourth = (str(pk) for pk in ProductPage.objects.live().filter(in_stock=True).values_list("pk", flat=True)[:4])
    registry.publish(catalog.RECOMMENDER, pairs_model([(first, second), (third, fourth)], time.time()), {})
    viewed(VISITOR, third)
    shown = ids(catalog.recommended(conf.get_profile_store().get(VISITOR, time.time()), 4))
    assert shown[0] == fourth and third not in shown


def test_out_of_stock_cart_and_excluded_products_are_never_recommended(models_dir):
    out_of_stock = str(ProductPage.objects.filter(in_stock=False).values_list("pk", flat=True).first())
    first, second, third = (str(pk) for pk in ProductPage.objects.live().filter(in_stock=True).values_list("pk", flat=True)[:3])
    registry.publish(catalog.RECOMMENDER, pairs_model([(first, out_of_stock), (first, second), (first, third)], time.time()), {})
    viewed(VISITOR, first)
    store = conf.get_profile_store()
    store.record(VISITOR, [Event("cart-1", "add_to_cart", ts=time.time(), item=second, attrs={"quantity": 1})], time.time())
    shown = ids(catalog.recommended(store.get(VISITOR, time.time()), 6, exclude=[third]))
    assert len(shown) == 6
    assert not {out_of_stock, second, third, first} & set(shown)


def test_without_a_model_the_block_falls_back_to_trending_and_says_so(models_dir, caplog):
    viewed(VISITOR, "1")
    profile = conf.get_profile_store().get(VISITOR, time.time())
    with caplog.at_level(logging.WARNING):
        shown = ids(catalog.recommended(profile, 4))
    assert shown == ids(catalog.trending(4, exclude=profile.down_votes))
    assert "could not be loaded" in caplog.text


def test_a_corrupt_model_file_falls_back_to_trending(models_dir, caplog):
    version = registry.publish(catalog.RECOMMENDER, pairs_model([("1", "2")], time.time()), {})
    (models_dir / catalog.RECOMMENDER / version / "artifact.joblib").write_bytes(b"not a model")
    registry.get_registry().forget()
    with caplog.at_level(logging.WARNING):
        shown = ids(catalog.recommended(None, 4))
    assert shown == ids(catalog.trending(4))
    assert "could not be loaded" in caplog.text


def test_graphql_recommendations_match_the_block(models_dir, client):
    first, second, third, fourth = (str(pk) for pk in ProductPage.objects.live().filter(in_stock=True).values_list("pk", flat=True)[:4])
    registry.publish(catalog.RECOMMENDER, pairs_model([(first, second), (third, fourth)], time.time()), {})
    viewed(VISITOR, first)
    consent_cookies(client, VISITOR)
    body = {"query": (OPERATIONS / "recommendations.graphql").read_text(), "variables": {"first": 4, "strategy": "recommended"}}
    data = client.post("/graphql/", body, content_type="application/json").json()["data"]
    block = ids(catalog.recommended(conf.get_profile_store().get(VISITOR, time.time()), 4))
    assert [product["id"] for product in data["recommendations"]] == block
    assert block[0] == second
