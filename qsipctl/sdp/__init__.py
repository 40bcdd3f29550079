"""SDP (RFC 4566) and offer/answer (RFC 3264) for the call probe, sans-IO."""

from qsipctl.sdp.crypto import CryptoAttribute, new_crypto, parse_crypto
from qsipctl.sdp.direction import (
    OfferDirection,
    answer_direction,
    offered_direction,
    read_offer,
    with_direction,
)
from qsipctl.sdp.errors import NoCommonCodec, SdpError
from qsipctl.sdp.message import Media, RtpMap, SessionDescription, parse
from qsipctl.sdp.negotiate import (
    CODECS,
    Codec,
    Negotiated,
    OfferAnalysis,
    OfferSettings,
    analyse_offer,
    answer_offer,
    build_offer,
    explain_status,
    negotiate,
)

__all__ = [
    "CODECS",
    "Codec",
    "CryptoAttribute",
    "Media",
    "Negotiated",
    "NoCommonCodec",
    "OfferAnalysis",
    "OfferDirection",
    "OfferSettings",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "analyse_offer",
    "answer_direction",
    "answer_offer",
    "build_offer",
    "explain_status",
    "negotiate",
    "new_crypto",
    "offered_direction",
    "parse",
    "parse_crypto",
    "read_offer",
    "with_direction",
]
