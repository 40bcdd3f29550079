"""Talking to a responder from the engineer's side, over any :class:`DatagramPort`.

Each request leaves from the port whose treatment we want to learn (the SIP
port, an RTP port), so the client borrows a port rather than owning one.
"""

from __future__ import annotations

import time
from typing import Any

from qsipctl.responder.protocol import MAGIC, ProtocolError, new_request, sign, verify
from qsipctl.stun.transport import Addr, DatagramPort

PAD_TO = 400  # room for the answers we ask for (answers are never larger than requests)


class ResponderError(Exception):
    """The responder said no, or did not answer (the message says which)."""


async def request(
    port: DatagramPort,
    server: Addr,
    secret: bytes,
    op: str,
    *,
    timeout: float = 2.0,
    tries: int = 3,
    pad_to: int = PAD_TO,
    **args: Any,
) -> dict[str, Any]:
    """Send one authenticated request (retried on silence) and return the answer body."""
    body = new_request(op, time.time(), pad_to=pad_to, **args)
    data = sign(secret, body)
    for _ in range(tries):
        port.sendto(data, server)
        deadline = time.monotonic() + timeout / tries
        answer = await _wait_answer(port, secret, body["nonce"], deadline)
        if answer is not None:
            if not answer.get("ok"):
                raise ResponderError(f"responder refused {op}: {answer.get('error')}")
            return answer
    raise ResponderError(f"no answer from the responder at {server[0]}:{server[1]} to {op}")


async def _wait_answer(
    port: DatagramPort, secret: bytes, nonce: str, deadline: float, phase: str | None = None
) -> dict[str, Any] | None:
    while (left := deadline - time.monotonic()) > 0:
        got = await port.recv(left)
        if got is None:
            return None
        data = got[0]
        if not data.startswith(MAGIC):
            continue
        try:
            body = verify(secret, data)
        except ProtocolError:
            continue
        if body.get("nonce") == nonce and (phase is None or body.get("phase") == phase):
            return body
    return None


async def hold(
    port: DatagramPort, server: Addr, secret: bytes, pause: float, timeout: float = 2.0
) -> bool:
    """True when the answer sent ``pause`` s after our request still reached us."""
    body = new_request("hold", time.time(), pad_to=PAD_TO, pause=pause)
    port.sendto(sign(secret, body), server)
    first = await _wait_answer(port, secret, body["nonce"], time.monotonic() + timeout, "now")
    if first is None:
        raise ResponderError(f"no answer from the responder at {server[0]}:{server[1]} to hold")
    if not first.get("ok"):
        raise ResponderError(f"responder refused hold: {first.get('error')}")
    later = await _wait_answer(
        port, secret, body["nonce"], time.monotonic() + pause + timeout, "later"
    )
    return later is not None
