"""Shared test configuration.

Fixtures that start real servers live in ``tests/fixtures/<server>.py`` and
are registered here, so every test directory can use them.
"""

import os

from hypothesis import HealthCheck, settings

# Timing is never what a property test checks: on a loaded 2-core CI machine a
# slow example must not fail the run.  CI explores a fixed, seeded set of
# examples so a submission is judged on the same inputs every time; locally
# hypothesis keeps exploring new ones.
settings.register_profile(
    "qsipctl",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
    print_blob=True,
)
settings.load_profile("qsipctl")

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.kamailio",
    "tests.fixtures.dnsmasq",
    "tests.fixtures.sshd",
    "tests.fixtures.baresip",
    "tests.fixtures.qrc_standin",
    "tests.fixtures.nattopo",
]
