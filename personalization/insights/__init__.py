"""Insights (issue 17): how every variant performs per segment, device and country.

The worker counts impressions, unique viewers, clicks, conversions and view time into hourly Redis
counters as it processes stream entries (`counting`), and flushes them exactly once into
`InsightHour` and `InsightDay` rows. The report (`report`, `views`) reads only those rows; the
alerts (`alerts`) test each busy cell against the same hours of previous weeks; `metrics` serves
/metrics for Prometheus; `monitoring` watches the trained models.
"""
