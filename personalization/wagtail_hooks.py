from wagtail.snippets.models import register_snippet
from wagtail.snippets.views.snippets import SnippetViewSet

from .models import Segment


class SegmentViewSet(SnippetViewSet):
    model = Segment
    icon = "group"
    menu_label = "Segments"
    menu_order = 250
    add_to_admin_menu = True
    list_display = ["name", "slug", "enabled", "priority", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "slug", "description"]


register_snippet(SegmentViewSet)
