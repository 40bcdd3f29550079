"""How many softphones each Q-SYS core model may run.

From QSC's Schematic Library > Softphone help page (softphone licensing per
core model).  A model we do not know can be used with ``qsys_softphone_limit``
set explicitly on the host or group.
"""

from __future__ import annotations

import functools
import re

SOFTPHONE_LIMITS: dict[str, int] = {
    "Core 110f": 4,
    "Core 110c": 1,
    "Core 510i": 64,
    "Core 6000 CXR": 64,
    "Core Nano": 2,
    "Core 8 Flex": 2,
    "NV-32-H": 1,
}


def _key(name: str) -> str:
    text = re.sub(r"\(core capable\)", "", name.lower())
    text = re.sub(r"[^a-z0-9]", "", text)
    return text.removeprefix("qsys").removeprefix("core")


_BY_KEY = {_key(name): name for name in SOFTPHONE_LIMITS}


@functools.cache  # a site names a handful of models for its hundreds of cores
def canonical_model(name: str) -> str | None:
    """``core110f`` / ``Core 110f`` / ``110F`` -> ``Core 110f``; None when unknown."""
    return _BY_KEY.get(_key(name))
