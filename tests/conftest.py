"""Shared test configuration.

Fixtures that start real servers live in ``tests/fixtures/<server>.py`` and
are registered here, so every test directory can use them.
"""

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.kamailio",
    "tests.fixtures.dnsmasq",
    "tests.fixtures.sshd",
]
