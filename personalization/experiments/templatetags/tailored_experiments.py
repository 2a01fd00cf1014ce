"""Figures as editors read them: rates and relative lifts in percent, absolute lifts in points."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def pct(value: float | None, digits: int = 1) -> str:
    """0.0923 -> "9.2%"."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


@register.filter
def signed_pct(value: float | None, digits: int = 1) -> str:
    """0.29 -> "+29.0%" (a relative lift)."""
    return "—" if value is None else f"{value * 100:+.{digits}f}%"


@register.filter
def points(value: float | None, digits: int = 2) -> str:
    """0.0269 -> "+2.69 pts" (an absolute lift: a difference of rates)."""
    return "—" if value is None else f"{value * 100:+.{digits}f} pts"


@register.filter
def get(mapping: dict | None, key: str):
    """A mapping's value by a variable key (templates cannot index with a variable)."""
    return (mapping or {}).get(key)


@register.filter
def by_arm(comparisons, goals: list[str]) -> list[dict]:
    """Comparisons (arm, goal) as rows per arm with one cell per goal, in the goals' order."""
    rows: dict[str, dict] = {}
    for comparison in comparisons:
        row = rows.setdefault(comparison.arm, {"arm": comparison.arm, "by_goal": {}})
        row["by_goal"][comparison.goal] = comparison
    return [{"arm": row["arm"], "cells": [row["by_goal"].get(goal) for goal in goals]} for row in rows.values()]
