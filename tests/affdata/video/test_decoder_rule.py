"""``affdata.video.decoder.decoder_by_rule``: decord only where it is known to agree with PyAV."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from affdata.video.decoder import DECORD_CODECS, decoder_by_rule
from affdata.video.probe import StreamFacts

H264 = StreamFacts(index=0, container="mov,mp4,m4a,3gp,3g2,mj2", codec="h264", width=64, height=48,
                   sar=Fraction(1), time_base=Fraction(1, 15360), container_frames=30, has_b_frames=False,
                   nominal_rates=(Fraction(30),), average_rate=Fraction(30))


def test_an_exact_count_of_a_codec_decord_reads_gets_decord() -> None:
    decoder, why = decoder_by_rule(H264, [])
    assert decoder == "decord" and "by rule" in why and "h264" in why


@pytest.mark.parametrize(("codec", "reasons", "why"), [
    ("gif", [], "cannot read GIF"),
    ("prores", [], "not known to read prores"),
    ("h264", ["the first packet is not a keyframe"], "do not map one to one"),
])
def test_everything_else_gets_pyav_with_its_reason(codec: str, reasons: list[str], why: str) -> None:
    assert codec == "h264" or codec not in DECORD_CODECS
    decoder, note = decoder_by_rule(replace(H264, codec=codec), reasons)
    assert decoder == "pyav" and why in note
