"""The wheel's package list (pyproject.toml) names every package folder of the plugin, so nothing
the plugin imports is left out of `pip install wagtail-tailored` (issue 13 item 1)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_ships_under_the_tailored_namespace():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = setuptools["package-dir"]
    assert folders == {"tailored": "personalization", "tailored.blocks": "blocks", "tailored.frontend": "frontend"}
    on_disk = set()
    for name, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            on_disk.add(".".join((name, *relative)))
    assert sorted(on_disk) == sorted(setuptools["packages"])
    assert all(package.startswith("tailored") for package in setuptools["packages"])
