"""Offer/answer (RFC 3264) for the softphone's one audio stream.

The offer is built the way a Q-SYS core builds it from its resolved softphone
settings (codec order, telephone-event payload type, SRTP, ptime 20,
sendrecv), so what a PBX sees from the probe is what it will see from the
core.  Codecs are matched by encoding name and clock rate, never by payload
number alone (dynamic numbers differ between sides; RFC 3264 section 6.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from qsipctl.sdp.crypto import CryptoAttribute, parse_crypto
from qsipctl.sdp.errors import NoCommonCodec, SdpError
from qsipctl.sdp.message import Media, RtpMap, SessionDescription, parse


@dataclass(frozen=True, slots=True)
class Codec:
    """An audio codec the probe can send: its SDP name, static payload type and clocks."""

    name: str
    payload_type: int
    clock_rate: int  # RTP timestamp rate
    sample_rate: int  # audio sampling rate (16000 for G.722, RFC 3551 4.5.2)

    @property
    def samples_per_frame(self) -> int:
        """Audio samples in 20 ms."""
        return self.sample_rate // 50

    @property
    def timestamp_step(self) -> int:
        """RTP timestamp increment per 20 ms packet."""
        return self.clock_rate // 50


CODECS: dict[str, Codec] = {
    "PCMU": Codec("PCMU", 0, 8000, 8000),
    "PCMA": Codec("PCMA", 8, 8000, 8000),
    "G722": Codec("G722", 9, 8000, 16000),
}
PTIME_MS = 20


@dataclass(frozen=True, slots=True)
class OfferSettings:
    """What the offer depends on: the core's resolved softphone settings, plus where we are."""

    codecs: tuple[str, ...] = ("PCMU", "PCMA", "G722")
    dtmf_mode: str = "rfc2833"
    dtmf_payload_type: int = 101
    srtp: bool = False
    rtcp_mux: bool = False

    @classmethod
    def from_core(cls, core: object) -> OfferSettings:
        """From a :class:`qsipctl.site.model.CoreSettings` (duck-typed: sdp sits below site)."""
        return cls(
            codecs=tuple(getattr(core, "codecs", ("PCMU", "PCMA", "G722"))),
            dtmf_mode=str(getattr(core, "dtmf_mode", "rfc2833")),
            dtmf_payload_type=int(getattr(core, "dtmf_payload_type", 101)),
            srtp=bool(getattr(core, "srtp", False)),
        )


def build_offer(
    settings: OfferSettings,
    address: str,
    port: int,
    session_id: int,
    crypto: CryptoAttribute | None = None,
    version: int = 1,
) -> SessionDescription:
    """The SDP offer; ``address`` is the local one or the STUN-mapped one when STUN is on."""
    unknown = [c for c in settings.codecs if c.upper() not in CODECS]
    if unknown:
        raise SdpError(f"cannot offer codec(s) {', '.join(unknown)}: known are PCMU, PCMA, G722")
    if settings.srtp and crypto is None:
        raise SdpError("SRTP is on but no SDES key was given for the offer")
    codecs = [CODECS[c.upper()] for c in settings.codecs]
    formats = [str(c.payload_type) for c in codecs]
    attrs: list[tuple[str, str | None]] = [
        ("rtpmap", f"{c.payload_type} {c.name}/{c.clock_rate}") for c in codecs
    ]
    if settings.dtmf_mode == "rfc2833":
        pt = settings.dtmf_payload_type
        formats.append(str(pt))
        attrs += [("rtpmap", f"{pt} telephone-event/8000"), ("fmtp", f"{pt} 0-16")]
    attrs.append(("ptime", str(PTIME_MS)))
    if settings.rtcp_mux:
        attrs.append(("rtcp-mux", None))
    if settings.srtp and crypto is not None:
        attrs.append(("crypto", crypto.serialize()))
    attrs.append(("sendrecv", None))
    media = Media(
        kind="audio",
        port=port,
        proto="RTP/SAVP" if settings.srtp else "RTP/AVP",
        formats=tuple(formats),
        attributes=tuple(attrs),
    )
    return SessionDescription(
        origin_address=address,
        session_id=session_id,
        session_version=version,
        session_name="qsipctl",
        connection=address,
        media=(media,),
    )


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What offer and answer agreed on for the audio stream."""

    codec: Codec
    remote_payload_type: int  # the number to send with (the receiver's, RFC 3264 5.1)
    remote_address: str
    remote_port: int
    remote_rtcp_port: int
    rtcp_mux: bool
    telephone_event_pt: int | None  # the far end's number for telephone-event, if any
    direction: str  # the far end's direction attribute
    ptime: int | None
    srtp_crypto: CryptoAttribute | None  # the far end's key (they send with it)
    offered: tuple[str, ...]  # the offer's codec names, for messages
    answered: tuple[str, ...]  # the answer's codec names


def codec_names(media: Media) -> tuple[str, ...]:
    """Readable names of an m-line's formats, in order (``G729``, ``telephone-event``, ``96``)."""
    return tuple(c.encoding if isinstance(c, RtpMap) else c for c in media.codecs())


def _audio_names(media: Media) -> tuple[str, ...]:
    return tuple(n for n in codec_names(media) if n.lower() not in ("telephone-event", "cn"))


def _telephone_event(media: Media) -> int | None:
    for pt, rm in media.rtpmaps().items():
        if rm.encoding.lower() == "telephone-event" and pt in media.payload_types:
            return pt
    return None


def _rtcp_port(media: Media) -> int:
    value = media.attribute("rtcp")  # RFC 3605 a=rtcp:port
    if value:
        head = value.split()[0]
        if head.isdigit() and 0 < int(head) < 65536:
            return int(head)
    return media.port + 1


def negotiate(offer: SessionDescription, answer: SessionDescription, answerer: str = "the far end"
              ) -> Negotiated:  # fmt: skip
    """Read the answer to *our* offer: the codec we send with is the answer's first we offered."""
    ours, theirs = offer.audio(), answer.audio()
    if ours is None:
        raise SdpError("our offer has no audio m-line")
    offered = _audio_names(ours)
    if theirs is None:
        raise SdpError(f"{answerer}'s answer has no audio m-line")
    if theirs.port == 0:
        raise NoCommonCodec(offered, _audio_names(theirs), f"{answerer} (port 0: stream refused)")
    return _agree(ours, answer, theirs, prefer_remote=True, who=answerer)


def answer_offer(
    settings: OfferSettings, offer: SessionDescription, who: str = "the far end"
) -> Negotiated:
    """Choose for an incoming offer (the inbound check): the offer's first codec we list."""
    theirs = offer.audio()
    if theirs is None or theirs.port == 0:
        raise SdpError(f"{who}'s offer has no usable audio m-line")
    ours = build_offer(settings, "0.0.0.0", 9, 0, _placeholder_crypto(settings)).media[0]
    return _agree(ours, offer, theirs, prefer_remote=True, who=who)


def _placeholder_crypto(settings: OfferSettings) -> CryptoAttribute | None:
    if not settings.srtp:
        return None
    return CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_80", b"\0" * 30)


def _agree(ours: Media, remote_sd: SessionDescription, theirs: Media, prefer_remote: bool,
           who: str) -> Negotiated:  # fmt: skip
    """RFC 3264: the first of the remote list (its preference order) that we also have."""
    our_keys = {rm.key: rm for rm in ours.rtpmaps().values()}
    remote_maps = theirs.rtpmaps()
    chosen: tuple[Codec, int] | None = None
    for pt in theirs.payload_types if prefer_remote else ours.payload_types:
        rm = remote_maps.get(pt)
        if rm is None or rm.key not in our_keys:
            continue
        codec = CODECS.get(rm.encoding.upper())
        if codec is not None and codec.clock_rate == rm.clock_rate:
            chosen = (codec, pt)
            break
    if chosen is None:
        raise NoCommonCodec(_audio_names(ours), _audio_names(theirs), who)
    address = remote_sd.media_address(theirs)
    if address is None:
        raise SdpError(f"{who}'s SDP has no c= line for its audio")
    crypto = None
    if theirs.proto.upper().endswith("SAVP"):
        attrs = [parse_crypto(v) for v in theirs.attribute_values("crypto")]
        crypto = next((a for a in attrs if a.suite == "AES_CM_128_HMAC_SHA1_80"), None)
        if crypto is None:
            raise SdpError(f"{who} uses {theirs.proto} without an AES_CM_128_HMAC_SHA1_80 key")
    mux = theirs.rtcp_mux and ours.rtcp_mux
    return Negotiated(
        codec=chosen[0],
        remote_payload_type=chosen[1],
        remote_address=address,
        remote_port=theirs.port,
        remote_rtcp_port=theirs.port if mux else _rtcp_port(theirs),
        rtcp_mux=mux,
        telephone_event_pt=_telephone_event(theirs) if _telephone_event(ours) else None,
        direction=theirs.direction,
        ptime=theirs.ptime,
        srtp_crypto=crypto,
        offered=_audio_names(ours),
        answered=_audio_names(theirs),
    )


def explain_status(status: int, offered: tuple[str, ...], warning: str | None = None) -> str:
    """Plain words for a 488/606 to our offer (and any Warning text the PBX gave)."""
    listed = ", ".join(offered) or "no codec"
    base = {
        488: f"488 Not Acceptable Here: the PBX or the far phone accepts none of what we "
        f"offered here (codecs {listed}; also SRTP or ptime settings) — make one codec "
        "common to both codec lists",
        606: f"606 Not Acceptable: the far end accepts the session nowhere (we offered "
        f"{listed}) — its codec list or media policy excludes every one of ours",
    }.get(status, f"{status}: the offer was refused (we offered {listed})")
    return f"{base}; PBX says: {warning}" if warning else base


@dataclass(frozen=True, slots=True)
class OfferAnalysis:
    """What an incoming INVITE offered, for the Q-SYS early-offer check (pure data)."""

    early_offer: bool
    codecs: tuple[str, ...]  # audio codecs offered, in order
    common: tuple[str, ...]  # those also in the core's list, in the offer's order
    telephone_event: bool
    telephone_event_pt: int | None
    srtp: bool
    error: str | None  # SDP present but unreadable / without audio
    verdict: str


def analyse_offer(
    body: bytes | None, content_type: str | None, core_codecs: tuple[str, ...], dtmf_mode: str
) -> OfferAnalysis:
    """Early or delayed offer, and whether the core could answer it (no I/O)."""
    is_sdp = bool(body) and (content_type or "application/sdp").lower().startswith(
        "application/sdp"
    )
    if not is_sdp or body is None:
        return OfferAnalysis(False, (), (), False, None, False, None, DELAYED_OFFER_VERDICT)
    try:
        audio = parse(body).audio()
    except SdpError as exc:
        return OfferAnalysis(True, (), (), False, None, False, str(exc), f"broken SDP: {exc}")
    if audio is None or audio.port == 0:
        msg = "the INVITE's SDP has no usable audio m-line"
        return OfferAnalysis(True, (), (), False, None, False, msg, msg)
    names = _audio_names(audio)
    wanted = {c.upper() for c in core_codecs}
    common = tuple(n for n in names if n.upper() in wanted)
    te = _telephone_event(audio)
    srtp = audio.proto.upper().endswith("SAVP")
    if not common:
        verdict = (f"no codec in common: the PBX offers {', '.join(names) or 'nothing'}; "
                   f"the core lists {', '.join(core_codecs)}")  # fmt: skip
    elif dtmf_mode == "rfc2833" and te is None:
        verdict = (f"early offer with {common[0]}, but no telephone-event: RFC 2833 DTMF "
                   "from the core will not be understood")  # fmt: skip
    else:
        verdict = f"early offer; the core would answer with {common[0]}"
    return OfferAnalysis(True, names, common, te is not None, te, srtp, None, verdict)


DELAYED_OFFER_VERDICT = (
    "the PBX sends INVITE without SDP (delayed offer); the Q-SYS Softphone needs early "
    "offer — enable it on the extension/trunk"
)
