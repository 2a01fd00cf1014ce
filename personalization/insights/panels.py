"""The dashboard panel of open insight alerts (issue 17 item 4)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from wagtail.admin.ui.components import Component

from tailored.models import Alert

SHOWN_DAYS = 7


class AlertsPanel(Component):
    name = "tailored_insight_alerts"
    order = 5
    template_name = "personalization/insights/alerts_panel.html"

    def __init__(self) -> None:
        since = timezone.now() - timedelta(days=SHOWN_DAYS)
        self.alerts = list(Alert.objects.filter(resolved=False, created_at__gte=since)[:5])

    def get_context_data(self, parent_context=None):
        return {"alerts": self.alerts, "days": SHOWN_DAYS}
