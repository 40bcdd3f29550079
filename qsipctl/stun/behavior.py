"""RFC 5780 NAT behaviour discovery as a decision procedure, without I/O.

The procedure asks for Binding tests one at a time (:meth:`next_test`), the
caller runs each from the named local socket and hands back what came
(:meth:`record`), and :meth:`result` says what the answers mean.  Tests on
a fake transport drive every branch in microseconds; the real proof runs
against coturn across a real NAT.

Two local sockets, on purpose: the mapping tests (RFC 5780 4.3) send from
one socket to the server's primary and other addresses, which opens the NAT
for those addresses; the filtering tests (4.4) must then start from a
*fresh* socket, or the CHANGE-REQUEST answers would pass a filter that the
mapping tests already opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qsipctl.stun.client import BindingAnswer
from qsipctl.stun.message import TransportAddress

Socket = Literal["mapping", "filtering"]
Mapping = Literal[
    "no-nat",
    "endpoint-independent",
    "address-dependent",
    "address-and-port-dependent",
    "unknown",
]
Filtering = Literal[
    "endpoint-independent", "address-dependent", "address-and-port-dependent", "unknown"
]


@dataclass(frozen=True, slots=True)
class BindingTest:
    """One Binding request to send: from which socket, to where, asking what."""

    name: str
    socket: Socket
    dest: TransportAddress
    change_ip: bool = False
    change_port: bool = False


@dataclass(frozen=True, slots=True)
class Behavior:
    """The verdict and the answers it rests on (evidence for the report)."""

    reachable: bool
    rfc5780: bool  # the server gave OTHER-ADDRESS, so behaviour could be tested
    mapping: Mapping
    filtering: Filtering
    local: TransportAddress | None
    public: TransportAddress | None
    answers: tuple[tuple[str, BindingAnswer], ...]

    @property
    def nat(self) -> bool | None:
        if self.public is None or self.local is None:
            return None
        return self.public != self.local

    @property
    def port_preserved(self) -> bool | None:
        if self.public is None or self.local is None:
            return None
        return self.public.port == self.local.port


class BehaviorDiscovery:
    """Mapping tests I-III, then filtering tests I-III, skipping what is already decided."""

    def __init__(self, server: TransportAddress, *, filtering: bool = True) -> None:
        self.server = server
        self._want_filtering = filtering
        self._answers: dict[str, BindingAnswer] = {}
        self._order: list[str] = []
        self._pending: BindingTest | None = None
        self._done = False
        self.mapping: Mapping = "unknown"
        self.filtering: Filtering = "unknown"

    # -- the procedure -------------------------------------------------
    def next_test(self) -> BindingTest | None:
        """The next test to run, or None when the verdict is complete."""
        if self._pending is not None:
            raise RuntimeError("record() the previous test first")
        if self._done:
            return None
        test = self._decide()
        if test is None:
            self._done = True
        self._pending = test
        return test

    def record(self, test: BindingTest, answer: BindingAnswer) -> None:
        if test != self._pending:
            raise RuntimeError(f"record() for {test.name}, but {self._pending} is pending")
        self._pending = None
        self._answers[test.name] = answer
        self._order.append(test.name)

    def _decide(self) -> BindingTest | None:
        a = self._answers
        m1 = a.get("mapping-1")
        if m1 is None:
            return BindingTest("mapping-1", "mapping", self.server)
        if m1.mapped is None:
            return None  # no STUN answer: nothing else can be learnt
        other = m1.other
        if m1.mapped == m1.local:
            self.mapping = "no-nat"
        elif other is None:
            return None
        elif "mapping-2" not in a:
            return BindingTest("mapping-2", "mapping", TransportAddress(other.ip, self.server.port))
        elif a["mapping-2"].mapped is None:
            return None
        elif a["mapping-2"].mapped == m1.mapped:
            self.mapping = "endpoint-independent"
        elif "mapping-3" not in a:
            return BindingTest("mapping-3", "mapping", other)
        else:
            m3 = a["mapping-3"].mapped
            if m3 is None:
                return None
            same = m3 == a["mapping-2"].mapped
            self.mapping = "address-dependent" if same else "address-and-port-dependent"
        return self._filtering(other)

    def _filtering(self, other: TransportAddress | None) -> BindingTest | None:
        if not self._want_filtering or other is None:
            return None
        a = self._answers
        if "filtering-1" not in a:
            return BindingTest("filtering-1", "filtering", self.server)
        if a["filtering-1"].mapped is None:
            return None
        if "filtering-2" not in a:
            return BindingTest("filtering-2", "filtering", self.server, True, True)
        if a["filtering-2"].mapped is not None:
            self.filtering = "endpoint-independent"
            return None
        if "filtering-3" not in a:
            return BindingTest("filtering-3", "filtering", self.server, False, True)
        got = a["filtering-3"].mapped is not None
        self.filtering = "address-dependent" if got else "address-and-port-dependent"
        return None

    def result(self) -> Behavior:
        m1 = self._answers.get("mapping-1")
        return Behavior(
            reachable=m1 is not None and m1.mapped is not None,
            rfc5780=m1 is not None and m1.other is not None,
            mapping=self.mapping,
            filtering=self.filtering,
            local=m1.local if m1 else None,
            public=m1.mapped if m1 else None,
            answers=tuple((n, self._answers[n]) for n in self._order),
        )
