from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from wagtail.signals import page_published, page_unpublished

from . import fragments, seen_items
from .activation.triggers import trigger_cache
from .models import Segment, Trigger
from .segments import segment_cache
from .services import link_login


@receiver(post_save, sender=Segment)
@receiver(post_delete, sender=Segment)
def _segments_changed(**kwargs) -> None:
    segment_cache.invalidate()


@receiver(user_logged_in)
def _merge_on_login(sender, request, user, **kwargs) -> None:
    if request is not None:
        link_login(request, user)


@receiver(page_published)
@receiver(page_unpublished)
def _drop_page_fragments(sender, instance, **kwargs) -> None:
    fragments.invalidate_page(instance.pk)


@receiver(post_save, sender=Trigger)
@receiver(post_delete, sender=Trigger)
def _triggers_changed(**kwargs) -> None:
    trigger_cache.invalidate()


@receiver(post_save)
@receiver(post_delete)
def _page_types_changed(sender, instance, **kwargs) -> None:
    # seen_items remembers which page ids are recommendable pages; a test database reuses ids.
    from wagtail.models import Page

    if isinstance(instance, Page):
        seen_items.forget_page_types()
