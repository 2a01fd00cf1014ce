"""The `integration` marker: tests that build the wheel and install it into fresh Wagtail sites
(network to the package index, several minutes). Select them with `-m integration`, leave them
out with `-m "not integration"`."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "integration: builds the wheel and installs it into fresh `wagtail start` sites in new venvs (slow, needs PyPI)",
    )
