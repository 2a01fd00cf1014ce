"""Machine learning for Tailored: recommender, offline evaluation, personas, propensity.

Nothing here imports Django at module level except the loaders that say so (`catalog.demo_catalog`).

numpy, scipy, scikit-learn and joblib are the optional `ml` extra. A web process never imports
them to serve a page: `available()` asks whether they are installed without importing them, and
what needs them (training, scoring, the recommender's model, the statistics of the reports)
imports them when it runs.
"""

from __future__ import annotations

import importlib.util
from functools import cache

# Import names, not distribution names: scikit-learn is imported as sklearn.
PACKAGES = ("numpy", "scipy", "sklearn", "joblib")
EXTRA = "wagtail-tailored[ml]"
NOTICE = f"Recommendations show trending products: install {EXTRA} and run manage.py tailored_train"


@cache
def missing() -> tuple[str, ...]:
    """The packages of the `ml` extra that cannot be imported here (found, not imported).

    Cached: what is installed does not change while a process runs, and the admin asks on every
    dashboard load."""
    absent = []
    for name in PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a finder that refuses the name, a broken install
            found = False
        if not found:
            absent.append(name)
    return tuple(absent)


def available() -> bool:
    """Whether the `ml` extra is installed: training, scoring, the recommender and the reports'
    statistics can run."""
    return not missing()


def requirement_message(what: str) -> str:
    """One sentence for a command or a screen that cannot work without the extra."""
    return f"{what} needs the ml extra (missing: {', '.join(missing()) or 'none'}): pip install '{EXTRA}'"
