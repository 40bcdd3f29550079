"""A thin asyncio transport around :class:`~qsipctl.qrc.protocol.QrcSession`.

It owns the socket, matches answers to waiting requests, queues pushed
change-group results and engine status, and sends ``NoOp`` whenever the
session says the 60 s rule is near.  Everything QRC-specific is decided in
the sans-IO layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from qsipctl.addr import host_port
from qsipctl.qrc.errors import QrcClosed, QrcError, QrcProtocolError, QrcRequestError
from qsipctl.qrc.protocol import (
    Changes,
    ErrorResponse,
    Event,
    Notification,
    QrcSession,
    Response,
    parse_changes,
)


class QrcClient:
    """One QRC connection to one core."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        keepalive: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.where = host_port(host, port)
        self.session = QrcSession(keepalive=keepalive)
        self.clock = clock
        self.changes: asyncio.Queue[Changes] = asyncio.Queue()
        self.status_changed = asyncio.Event()
        self.noops_sent = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed: BaseException | None = None

    async def connect(self, timeout: float) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout
            )
        except TimeoutError:
            raise QrcClosed(f"QRC {self.where}: no answer within {timeout:g} s") from None
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise QrcClosed(f"QRC {self.where}: cannot connect: {why}") from None
        self.session.last_sent = self.clock()
        self._tasks = [
            asyncio.create_task(self._read_loop()),
            asyncio.create_task(self._keepalive_loop()),
        ]

    @property
    def engine_status(self) -> dict[str, Any] | None:
        return self.session.engine_status

    async def wait_engine_status(self, timeout: float) -> dict[str, Any] | None:
        """The status the core pushes on connect (None if it sent none in time)."""
        if self.session.engine_status is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.status_changed.wait(), timeout)
        return self.session.engine_status

    async def call(self, method: str, params: Any = None, timeout: float = 5.0) -> Any:
        """Send a request and wait for its answer; an error answer raises QrcRequestError."""
        if self._closed is not None:
            raise self._closed_error()
        if self._writer is None:
            raise QrcClosed(f"QRC {self.where}: not connected")
        rid, data = self.session.request(method, {} if params is None else params, self.clock())
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        try:
            self._writer.write(data)
            await self._writer.drain()
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            why = f"no answer to {method} within {timeout:g} s"
            raise QrcError(f"QRC {self.where}: {why}") from None
        except (ConnectionError, OSError) as exc:
            raise QrcClosed(f"QRC {self.where}: connection lost: {exc}") from None
        finally:
            self._waiting.pop(rid, None)

    async def close(self) -> None:
        """Close the socket (the core then drops this connection's change groups)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 2)
            self._writer = None

    # -- internals ---------------------------------------------------------
    def _closed_error(self) -> QrcError:
        exc = self._closed
        if isinstance(exc, QrcError):
            return exc
        return QrcClosed(f"QRC {self.where}: the core closed the connection")

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    raise QrcClosed(f"QRC {self.where}: the core closed the connection")
                for event in self.session.receive(data):
                    self._dispatch(event)
        except asyncio.CancelledError:
            raise
        except (QrcError, OSError) as exc:
            err = exc if isinstance(exc, QrcError) else QrcClosed(f"QRC {self.where}: {exc}")
            self._closed = err
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(err)
            self.status_changed.set()

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Response):
            if event.method == "ChangeGroup.AutoPoll" and isinstance(event.result, dict):
                with contextlib.suppress(QrcProtocolError):
                    self.changes.put_nowait(parse_changes(event.result))
            self._resolve(event.id, event.result, None)
        elif isinstance(event, ErrorResponse):
            if event.id is not None:
                err = QrcRequestError(event.code, event.message, event.method or "?", event.params)
                self._resolve(event.id, None, err)
        elif isinstance(event, Changes):
            self.changes.put_nowait(event)
        elif isinstance(event, Notification) and event.method == "EngineStatus":
            self.status_changed.set()

    def _resolve(self, rid: int, result: Any, error: BaseException | None) -> None:
        fut = self._waiting.get(rid)
        if fut is None or fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)

    async def _keepalive_loop(self) -> None:
        while True:
            delay = self.session.keepalive_due() - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if self._writer is None or self._closed is not None:
                return
            _, data = self.session.request("NoOp", {}, self.clock())
            self.noops_sent += 1
            try:
                self._writer.write(data)
                await self._writer.drain()
            except (ConnectionError, OSError):
                return
