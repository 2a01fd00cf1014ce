from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Segment
from .segments import segment_cache


@receiver(post_save, sender=Segment)
@receiver(post_delete, sender=Segment)
def _segments_changed(**kwargs) -> None:
    segment_cache.invalidate()
