"""A thin asyncio shell around :class:`~qsipctl.lab.registrar.Registrar`.

Why so thin: everything worth testing lives in the sans-IO registrar and the
endpoint; the one asyncio driver (:mod:`qsipctl.net.driver`) moves the bytes
and arms the timers.  UDP and TCP share the same endpoint and registrar, so a
binding made over one is visible over the other.

Usage (what ``qsipctl demo`` does)::

    async with LabRegistrar(accounts) as lab:
        lab.udp_port, lab.tcp_port   # the bound ports (0 asks for free ones)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType

from qsipctl.lab.registrar import DEMO_ACCOUNTS, REALM, LabAccount, LabEvent, Registrar
from qsipctl.net.driver import SipDriver
from qsipctl.sip.endpoint import Endpoint, RequestCancelled, RequestReceived
from qsipctl.sip.errors import SipError


class LabRegistrar:
    """The lab registrar on UDP and TCP; an async context manager.

    ``on_event`` is called for every REGISTER outcome so a CLI can log it as
    it happens; the same events accumulate in :attr:`events`.
    """

    def __init__(
        self,
        accounts: Iterable[LabAccount] = DEMO_ACCOUNTS,
        host: str = "127.0.0.1",
        udp_port: int = 0,
        tcp_port: int = 0,
        realm: str | None = None,
        on_event: Callable[[LabEvent], None] | None = None,
    ) -> None:
        self.registrar = Registrar(accounts, realm=realm or REALM)
        self.host = host
        self.udp_port = udp_port
        self.tcp_port = tcp_port
        self._on_event = on_event
        self._driver: SipDriver | None = None
        self._seen = 0

    @property
    def events(self) -> list[LabEvent]:
        return list(self.registrar.log)

    async def start(self) -> None:
        endpoint = Endpoint(accept=("REGISTER", "OPTIONS"))
        self._driver = driver = SipDriver(endpoint, on_request=self._handle)
        udp = await driver.open_udp(self.host, self.udp_port)
        self.udp_port = udp.local[1]
        self.tcp_port = await driver.listen_tcp(self.host, self.tcp_port)

    def _handle(self, event: RequestReceived | RequestCancelled) -> None:
        """Answer through the registrar; drop what cannot even be answered."""
        if not isinstance(event, RequestReceived) or event.tx is None or self._driver is None:
            return
        source = (event.source.host, event.source.port)
        try:
            response = self.registrar.handle(event.request, source)
        except SipError:
            return
        if response is not None:
            self._driver.respond(event.tx, response)
        self._publish()

    async def stop(self) -> None:
        """Close sockets and cancel timers; safe to call twice."""
        if self._driver is not None:
            await self._driver.close()
            self._driver = None

    async def __aenter__(self) -> LabRegistrar:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _publish(self) -> None:
        """Hand new log entries to ``on_event`` in order."""
        log = self.registrar.log
        while self._seen < len(log):
            if self._on_event is not None:
                self._on_event(log[self._seen])
            self._seen += 1
