"""QRC without I/O: NUL-framed JSON-RPC 2.0, request ids, pushed messages, keep-alive.

QSC's QRC: each message is one JSON-RPC 2.0 object followed by a NUL byte,
requests carry a numeric ``id`` the core copies into its response, and the
core pushes ``EngineStatus`` on connect and on status changes.  A client must
send something at least every 60 s or the core closes the socket.

:class:`QrcSession` is the client side as a state machine in the h11 style:
bytes in, events out; :meth:`QrcSession.request` returns the bytes to send;
time is passed in and :meth:`QrcSession.keepalive_due` says when a ``NoOp``
is needed, so tests can run the 60 s rule in microseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from qsipctl.qrc.errors import QrcProtocolError

DEFAULT_PORT = 1710
IDLE_LIMIT = 60.0  # QSC: the core closes a socket that was silent this long
MAX_FRAME = 1 << 20  # a design's full control list is large, but not this large


@dataclass(frozen=True, slots=True)
class Response:
    """The result of one of our requests."""

    id: int
    method: str
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """An error answer; ``method`` is None when the id was not ours (or absent)."""

    id: int | None
    code: int
    message: str
    method: str | None
    params: Any


@dataclass(frozen=True, slots=True)
class Notification:
    """A message the core pushed without being asked (``EngineStatus``, ...)."""

    method: str
    params: Any


@dataclass(frozen=True, slots=True)
class Change:
    """One control's new state as a change group reports it."""

    component: str | None
    name: str
    value: Any
    string: str | None
    position: float | None = None


@dataclass(frozen=True, slots=True)
class Changes:
    """What a change group reported, from a poll answer or an AutoPoll push."""

    group: str
    changes: tuple[Change, ...]


Event = Response | ErrorResponse | Notification | Changes


def encode_message(obj: dict[str, Any]) -> bytes:
    """One QRC frame: compact JSON, then NUL (JSON text itself never holds a raw NUL)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\0"


@dataclass(slots=True)
class FrameDecoder:
    """Split a byte stream at NUL bytes; a frame larger than ``limit`` is an error."""

    limit: int = MAX_FRAME
    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        while True:
            end = self._buffer.find(b"\0")
            if end < 0:
                break
            frames.append(bytes(self._buffer[:end]))
            del self._buffer[: end + 1]
        if len(self._buffer) > self.limit:
            raise QrcProtocolError(f"QRC message longer than {self.limit} bytes without a NUL")
        return [f for f in frames if f.strip()]  # tolerate stray NULs / blank frames


def parse_changes(params: Any) -> Changes:
    """``{"Id": ..., "Changes": [...]}`` (a poll result) as a :class:`Changes` event."""
    if not isinstance(params, dict):
        raise QrcProtocolError("change group result is not an object")
    group = params.get("Id")
    raw = params.get("Changes", [])
    if not isinstance(raw, list):
        raise QrcProtocolError("change group 'Changes' is not a list")
    out: list[Change] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            continue  # liberal: one odd entry must not hide the others
        comp = item.get("Component")
        string = item.get("String")
        pos = item.get("Position")
        out.append(
            Change(
                component=comp if isinstance(comp, str) else None,
                name=item["Name"],
                value=item.get("Value"),
                string=string if isinstance(string, str) else None,
                position=float(pos) if isinstance(pos, int | float) else None,
            )
        )
    return Changes(str(group) if group is not None else "", tuple(out))


@dataclass(slots=True)
class QrcSession:
    """The client side of one QRC connection.

    ``keepalive`` is how long we may stay silent before sending ``NoOp``:
    half the core's 60 s limit by default, so one lost beat does not cost
    the connection.  ``engine_status`` is the last status the core pushed.
    """

    keepalive: float = IDLE_LIMIT / 2
    last_sent: float = 0.0
    engine_status: dict[str, Any] | None = None
    _next_id: int = 1
    _pending: dict[int, tuple[str, Any]] = field(default_factory=dict)
    _autopoll: dict[int, str] = field(default_factory=dict)  # request id -> group id
    _decoder: FrameDecoder = field(default_factory=FrameDecoder)

    def request(self, method: str, params: Any, now: float) -> tuple[int, bytes]:
        """The bytes of a new request and its id (numeric, as QRC requires)."""
        rid = self._next_id
        self._next_id += 1
        self._pending[rid] = (method, params)
        if method == "ChangeGroup.AutoPoll" and isinstance(params, dict):
            self._autopoll[rid] = str(params.get("Id", ""))
        self.last_sent = now
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        return rid, encode_message(msg)

    def keepalive_due(self) -> float:
        """The time by which something must be sent (a ``NoOp`` if nothing else)."""
        return self.last_sent + self.keepalive

    def pending(self) -> int:
        return len(self._pending)

    def forget_autopoll(self, group: str) -> None:
        """After ``ChangeGroup.Destroy``: later pushes for it are no longer ours."""
        for rid in [r for r, g in self._autopoll.items() if g == group]:
            del self._autopoll[rid]

    def receive(self, data: bytes) -> list[Event]:
        """Feed received bytes; return the complete messages as events."""
        return [self._event(frame) for frame in self._decoder.feed(data)]

    def _event(self, frame: bytes) -> Event:
        try:
            msg = json.loads(frame.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise QrcProtocolError(f"the core sent a message that is not JSON: {exc}") from None
        if not isinstance(msg, dict):
            raise QrcProtocolError("the core sent a JSON value that is not an object")
        if "method" in msg and "id" not in msg:
            return self._notification(str(msg["method"]), msg.get("params"))
        rid = msg.get("id")
        rid = rid if isinstance(rid, int) and not isinstance(rid, bool) else None
        if "error" in msg:
            return self._error(rid, msg["error"])
        if "result" in msg and rid is not None:
            return self._response(rid, msg["result"])
        if "method" in msg:  # a request from the core: QRC defines none, treat as a push
            return Notification(str(msg["method"]), msg.get("params"))
        raise QrcProtocolError("the core sent a message with neither result, error nor method")

    def _notification(self, method: str, params: Any) -> Event:
        if method == "EngineStatus" and isinstance(params, dict):
            self.engine_status = params
        if method == "ChangeGroup.Poll":  # AutoPoll results as a push
            return parse_changes(params)
        return Notification(method, params)

    def _error(self, rid: int | None, err: Any) -> ErrorResponse:
        code, message = -32603, ""
        if isinstance(err, dict):
            raw = err.get("code")
            code = raw if isinstance(raw, int) and not isinstance(raw, bool) else code
            message = str(err.get("message", ""))
        method, params = self._pending.pop(rid, (None, None)) if rid is not None else (None, None)
        return ErrorResponse(rid, code, message, method, params)

    def _response(self, rid: int, result: Any) -> Event:
        if rid in self._pending:
            method, _ = self._pending.pop(rid)
            return Response(rid, method, result)
        if rid in self._autopoll:  # AutoPoll results re-using the AutoPoll request's id
            return parse_changes(result)
        raise QrcProtocolError(f"the core answered request id {rid}, which we never sent")
