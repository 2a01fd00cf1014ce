"""Keep the running-experiment cache current: reload it when a request starts after an edit
here, and announce edits to the other processes (see `ExperimentCache`)."""

from __future__ import annotations

import logging

from django.core.signals import request_started
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from wagtail.signals import page_published, page_unpublished

from .models import Experiment, ExperimentArm
from .services import experiment_cache, forget_experiment

logger = logging.getLogger(__name__)


@receiver(post_save, sender=Experiment)
@receiver(post_delete, sender=Experiment)
@receiver(post_save, sender=ExperimentArm)
@receiver(post_delete, sender=ExperimentArm)
def experiment_changed(sender, **kwargs) -> None:
    experiment_cache.changed()


@receiver(post_delete, sender=Experiment)
def experiment_deleted(sender, instance, **kwargs) -> None:
    try:
        forget_experiment(instance.key, instance.goal_list)
    except Exception as error:  # the rows are gone either way; Redis keys of a dead test are inert
        logger.warning("experiment %s: counters not cleared: %s", instance.key, error)


@receiver(page_published)
@receiver(page_unpublished)
def page_changed(sender, instance, **kwargs) -> None:
    # A "variants" experiment reads its page's live content; other pages change nothing here.
    if any(live.page_id == instance.pk for live in experiment_cache.peek().by_key.values()):
        experiment_cache.changed()


@receiver(request_started)
def refresh_experiments(sender, **kwargs) -> None:
    try:
        experiment_cache.refresh()
    except Exception as error:  # a request must never fail here; the last good copy serves
        logger.warning("running experiments not refreshed: %s", error)
