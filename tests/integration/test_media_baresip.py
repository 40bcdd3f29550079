"""Our media against baresip, a real phone: it hears our tone, we hear its tone.

The call is set up by a hand-built INVITE (tests/fixtures/baresip_phone.py)
carrying the offer :func:`qsipctl.sdp.build_offer` makes; the answer is read
with :func:`qsipctl.sdp.negotiate`; the media session does the rest.
baresip records what it decoded (sndfile), and that recording is analysed
with our tone detector: proof that the audio arrived and is the tone we sent.
"""

from __future__ import annotations

import asyncio
import wave
from array import array
from pathlib import Path

import pytest

from qsipctl.media.session import MediaConfig, MediaSession
from qsipctl.rtp.tone import analyse
from qsipctl.sdp import OfferSettings, build_offer, negotiate, parse
from tests.fixtures.baresip_phone import baresip_phone, scripted_call
from tests.fixtures.common import wait_until

pytestmark = pytest.mark.integration


def heard_by_baresip(path: Path) -> tuple[int, array]:
    with wave.open(str(path)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        frames = array("h", w.readframes(w.getnframes()))
    return rate, frames[::channels]


@pytest.mark.parametrize("codecs", [("PCMU",), ("PCMA",), ("G722",)])
def test_baresip_hears_our_tone_and_we_hear_its_tone(tmp_path: Path, codecs: tuple[str, ...]
                                                     ) -> None:  # fmt: skip
    settings = OfferSettings(codecs=codecs)

    async def run() -> tuple[object, ...]:
        async with MediaSession(MediaConfig(codec=_codec(codecs[0]), local_host="127.0.0.1",
                                            port_range=(43000, 43999), tone_hz=440,
                                            rtcp_interval=1.0)) as media:  # fmt: skip
            offer = build_offer(settings, "127.0.0.1", media.local[1], 1)
            call = await asyncio.to_thread(scripted_call, phone, offer.serialize())
            try:
                assert call.status == 200, call.status
                agreed = negotiate(offer, parse(call.answer), "baresip")
                media.set_remote((agreed.remote_address, agreed.remote_port))
                media.start()
                await asyncio.sleep(0.5)
                media.send_dtmf("159#")
                await asyncio.sleep(2.5)
                return agreed, media.result()
            finally:
                await asyncio.to_thread(call.bye)
                call.sock.close()

    with baresip_phone(tmp_path / "baresip", tone=1000) as phone:
        events = phone.events()
        try:
            agreed, result = asyncio.run(run())
            wait_until(lambda: bool(phone.recordings()), timeout=10)
        finally:
            events.close()
    assert events.dtmf() == "159#", events.events  # RFC 4733 events, as baresip reports them
    assert agreed.codec.name == codecs[0]  # type: ignore[attr-defined]
    assert result.audio.kind == "tone"  # type: ignore[attr-defined]
    assert result.audio.frequency == pytest.approx(1000, abs=3)  # type: ignore[attr-defined]
    assert result.received.lost == 0  # type: ignore[attr-defined]
    rate, samples = heard_by_baresip(phone.recordings()[-1])
    theirs = analyse(samples[len(samples) // 2 :][: rate // 2], rate)  # middle half second
    assert theirs.kind == "tone" and theirs.frequency == pytest.approx(440, abs=3), theirs
    assert theirs.level_dbfs == pytest.approx(-14, abs=2)
    # Every quarter second: our tone, or the quiet of the DTMF pause; never noise (G.722's
    # ADPCM state must survive the pause, see qsipctl/media/codec.py).
    quarters = [analyse(samples[i : i + rate // 4], rate)
                for i in range(0, len(samples) - rate // 4, rate // 4)]  # fmt: skip
    assert all(q.kind in ("tone", "silence") for q in quarters), quarters


def _codec(name: str):  # type: ignore[no-untyped-def]
    from qsipctl.sdp import CODECS

    return CODECS[name]
