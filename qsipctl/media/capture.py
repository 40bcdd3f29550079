"""RTP/RTCP a media session sent and received, as packets for ``--pcap``.

The datagrams are written as they went over the wire (SRTP stays encrypted;
its header is clear, so Wireshark's RTP analysis still counts and times it).
Wireshark finds RTP by the SDP in the same capture; without SIP in the file,
``tshark -o rtp.heuristic_rtp:TRUE`` (or Decode As) reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from qsipctl.media.session import Captured
from qsipctl.net.pcap import udp_datagram, write_pcap
from qsipctl.net.trace import Trace

# RTP/RTCP packets one call keeps for --pcap: 100 000 is ~16 min of one stream both
# ways (50 packets/s each), ~20 MB; beyond it packets are counted, not kept
CAPTURE_LIMIT = 100_000


def media_packets(captured: Iterable[Captured]) -> list[tuple[float, bytes, str | None]]:
    return [(c.time, udp_datagram(c.src, c.dst, c.data, i), None) for i, c in enumerate(captured)]


def write_media_pcap(path: str | Path, captured: Iterable[Captured], traces: Iterable[Trace] = ()
                     ) -> None:  # fmt: skip
    """SIP traces and media in one pcapng file (atomic write)."""
    write_pcap(path, traces, media_packets(captured))
