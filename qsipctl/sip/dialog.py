"""SIP dialogs (RFC 3261 §12), sans-IO: the state two UAs share across requests.

Why its own layer: the endpoint matches transactions, but what a request
inside a call must carry (Call-ID, both tags, the next CSeq, the Route set
learned from Record-Route, the peer's Contact as Request-URI) is dialog
state, and so are the two duties RFC 3261 leaves to the UA core: ACK every
2xx to an INVITE, including retransmissions and forked ones (§13.2.2.4,
RFC 6026), and refuse an in-dialog request whose CSeq went backwards.

:class:`ClientInvite` tracks one INVITE we sent: each 1xx/2xx with a To tag
is its own (early) dialog, kept apart per tag because a forking proxy may
send several (§12.1.2, §13.2.2.4).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from qsipctl.sip.errors import SipError
from qsipctl.sip.headers import Headers, parse_name_addr
from qsipctl.sip.message import Request, Response
from qsipctl.sip.transaction import new_branch

_TAG_PARAM = re.compile(r";[ \t]*tag=[^;]*", re.IGNORECASE)
TARGET_REFRESH = frozenset({"INVITE", "UPDATE"})  # requests whose Contact moves the target


@dataclass(slots=True)
class Dialog:
    """One dialog, seen from our side; ``key`` is what the endpoint matches on."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our From (UAC) / To (UAS) header value, without tag
    remote_uri: str
    remote_target: str  # the peer's Contact URI: Request-URI of in-dialog requests
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    state: str = "early"  # early | confirmed | terminated
    via: str = ""  # our Via without branch, e.g. "SIP/2.0/UDP 198.18.0.2:5060;rport"
    # §14: offer/answer glare.  The CSeq of our re-INVITE (or UPDATE with an offer) that has
    # no final answer yet, and whether the far end's re-INVITE awaits its ACK.
    pending_offer: int | None = None
    remote_invite_open: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return self.call_id, self.local_tag, self.remote_tag

    # ------------------------------------------------------------ creation
    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """§12.1.2: from our request and a 1xx (tag) or 2xx; Record-Route reversed."""
        tag = response.to_tag
        if not tag or not request.from_tag:
            raise SipError("a dialog needs both tags")
        return cls(
            call_id=request.call_id,
            local_tag=request.from_tag,
            remote_tag=tag,
            local_uri=_without_tag(request.headers.get("From") or ""),
            remote_uri=_without_tag(request.headers.get("To") or ""),
            remote_target=_uri(response.headers.get("Contact")) or request.uri,
            route_set=response.headers.get_all("Record-Route")[::-1],
            local_seq=request.cseq[0],
            state="confirmed" if 200 <= response.status < 300 else "early",
            via=_via_without_branch(request),
        )

    @classmethod
    def as_uas(cls, request: Request, response: Response, via: str = "") -> Dialog:
        """§12.1.1: from a request we answered with a tag; Record-Route as received."""
        tag = response.to_tag
        if not tag or not request.from_tag:
            raise SipError("a dialog needs both tags")
        return cls(
            call_id=request.call_id,
            local_tag=tag,
            remote_tag=request.from_tag,
            local_uri=_without_tag(request.headers.get("To") or ""),
            remote_uri=_without_tag(request.headers.get("From") or ""),
            remote_target=_uri(request.headers.get("Contact")) or "",
            route_set=request.headers.get_all("Record-Route"),
            remote_seq=request.cseq[0],
            state="confirmed" if 200 <= response.status < 300 else "early",
            via=via,
        )

    # ------------------------------------------------------------ requests we send
    def next_hop(self) -> str:
        """The URI to send to (§12.2.1.1, §8.1.2): the first route, else the target."""
        return _route_uri(self.route_set[0]) if self.route_set else self.remote_target

    def create_request(
        self, method: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> Request:
        """A request inside the dialog with the next CSeq (a 2xx's ACK is :meth:`ack`'s)."""
        self.local_seq += 1
        if method == "INVITE" or (method == "UPDATE" and body):
            self.pending_offer = self.local_seq  # until request_done(): see receive_request
        return self._request(method, self.local_seq, headers, body)

    def request_done(self, request: Request) -> None:
        """Our re-INVITE/UPDATE got its final answer (or none will come): no longer pending."""
        if self.pending_offer == request.cseq[0]:
            self.pending_offer = None

    def answered(self, request: Request, status: int) -> None:
        """We gave the far end's in-dialog request its final answer; a non-2xx to an INVITE
        ends that INVITE here (its ACK stays in the transaction layer, §17.2.1)."""
        if request.method == "INVITE" and status >= 300:
            self.remote_invite_open = False

    @property
    def invite_in_progress(self) -> bool:
        """§14.1: no new re-INVITE while one is in progress in either direction."""
        return self.pending_offer is not None or self.remote_invite_open

    def ack(self, invite: Request) -> Request:
        """The ACK for a 2xx (§13.2.2.4): the INVITE's CSeq number, a new branch,
        the INVITE's credentials (§22.1)."""
        names = ("Authorization", "Proxy-Authorization")
        auth = [(n, v) for n in names for v in invite.headers.get_all(n)]
        return self._request("ACK", invite.cseq[0], auth, b"")

    def _request(
        self, method: str, seq: int, headers: Sequence[tuple[str, str]], body: bytes
    ) -> Request:
        uri, routes = self.remote_target, list(self.route_set)
        if routes and ";lr" not in routes[0].lower():
            # §12.2.1.1 strict router: it takes the Request-URI, the target goes last
            uri = _route_uri(routes.pop(0))
            routes.append(f"<{self.remote_target}>")
        h = Headers()
        if self.via:
            h.add("Via", f"{self.via};branch={new_branch()}")
        for route in routes:
            h.add("Route", route)
        h.add("Max-Forwards", "70")
        h.add("From", f"{self.local_uri};tag={self.local_tag}")
        h.add("To", f"{self.remote_uri};tag={self.remote_tag}")
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{seq} {method}")
        for name, value in headers:
            h.add(name, value)
        return Request(method, uri, h, body)

    # ------------------------------------------------------------ what we receive
    def update(self, response: Response) -> None:
        """A later 1xx/2xx of our INVITE: confirm, refresh target (§12.1.2, §12.2.1.2)."""
        if 200 <= response.status < 300:
            self.state = "confirmed"
        self.remote_target = _uri(response.headers.get("Contact")) or self.remote_target
        if self.state == "early" or 200 <= response.status < 300:
            self.route_set = response.headers.get_all("Record-Route")[::-1] or self.route_set

    def receive_request(self, request: Request) -> int | None:
        """Check and absorb an in-dialog request (§12.2.2).

        Returns None when it is fine, else the status to refuse it with: 500
        for a CSeq lower than the last one (an out-of-order or replayed request);
        491 Request Pending for a re-INVITE, or an UPDATE with an offer, that
        crosses our own pending re-INVITE/UPDATE offer (glare: RFC 3261 §14.2,
        RFC 3311 §5.2); the sender retries after a random wait.
        """
        if request.method == "ACK":
            self.remote_invite_open = False
            return None
        seq = request.cseq[0]
        if self.remote_seq is not None and seq <= self.remote_seq and request.method != "CANCEL":
            return 500
        self.remote_seq = seq
        offer = request.method == "INVITE" or (request.method == "UPDATE" and bool(request.body))
        if offer and self.pending_offer is not None:
            return 491
        if request.method == "INVITE":
            self.remote_invite_open = True  # until its ACK
        if request.method in TARGET_REFRESH:
            self.remote_target = _uri(request.headers.get("Contact")) or self.remote_target
        if request.method == "BYE":
            self.state = "terminated"
        return None


@dataclass(slots=True)
class ClientInvite:
    """One INVITE we sent: its early dialogs per To tag, the 2xx ACKs to repeat."""

    invite: Request
    dialogs: dict[str, Dialog] = field(default_factory=dict)
    acks: dict[str, Request] = field(default_factory=dict)  # to-tag -> ACK sent for its 2xx

    def on_response(self, response: Response) -> tuple[Dialog | None, Request | None]:
        """The dialog a 1xx/2xx belongs to, and the ACK to send now (2xx only).

        A retransmitted 2xx gets the same ACK again; a 2xx from a second fork
        gets its own dialog and ACK (the caller should BYE what it does not want).
        """
        tag = response.to_tag
        if tag is None or response.status >= 300 or response.status < 101:
            return None, None
        dialog = self.dialogs.get(tag)
        if dialog is None:
            dialog = self.dialogs[tag] = Dialog.as_uac(self.invite, response)
        else:
            dialog.update(response)
        if response.status < 200:
            return dialog, None
        if tag not in self.acks:  # a retransmitted 2xx gets the same ACK again
            self.acks[tag] = dialog.ack(self.invite)
        return dialog, self.acks[tag]


def _without_tag(value: str) -> str:
    """A From/To value without its tag parameter (the dialog adds tags itself).

    Header parameters follow the last ">" (or, without brackets, the bare URI's
    own ";", RFC 3261 §20.10), so a ";tag" inside <...> is the URI's and stays.
    """
    cut = value.rfind(">") + 1
    return value[:cut] + _TAG_PARAM.sub("", value[cut:])


def _route_uri(route: str) -> str:
    return _uri(route) or route.strip().strip("<>")


def _uri(value: str | None) -> str | None:
    """The URI of a name-addr (a Contact's first) or None: absent, ``*`` or unreadable."""
    try:
        return None if value is None or value == "*" else str(parse_name_addr(value).sip_uri())
    except SipError:
        return None


def _via_without_branch(request: Request) -> str:
    first = request.headers.get("Via") or ""
    return ";".join(p for p in first.split(";") if not p.strip().lower().startswith("branch="))
