"""ITU-T G.722 (64 kbit/s mode) encoder and decoder: sub-band ADPCM at 16 kHz.

Structure and names follow the Recommendation's block diagram: a 24-tap
quadrature mirror filter splits 16 kHz audio into a lower and a higher band
at 8 kHz each; the lower band is coded with a 6-bit ADPCM quantizer
(blocks 1L-6L), the higher band with a 2-bit one (1H-6H); both share the
adaptive pole/zero predictor of block 4.  One octet carries ``IH`` (2 bits)
and ``IL`` (6 bits) per pair of input samples.

Samples are 16-bit; the QMF is scaled as in the implementations deployed in
PBXs and phones (spandsp, which Asterisk, FreeSWITCH and baresip use), and
the output was checked bit-exact against libspandsp for the encoder and the
decoder (tests/unit/rtp/test_g722.py; docs/call.md says what was checked).
"""

from __future__ import annotations

import array

# Quantizer decision levels (block 1L), inverse quantizer outputs and
# log-scale adaptation tables, from the Recommendation's tables.
_Q6 = (0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714,
       786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919,
       0, 0)  # fmt: skip
_ILN = (0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14,
        13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 0)  # fmt: skip
_ILP = (0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42,
        41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 0)  # fmt: skip
_WL = (-60, -30, 58, 172, 334, 538, 1198, 3042)
_RL42 = (0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0)
_ILB = (2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714,
        2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676,
        3756, 3838, 3922, 4008)  # fmt: skip
_QM4 = (0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288,
        4240, 2584, 1200, 0)  # fmt: skip
_QM6 = (-136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280,
        -11192, -10232, -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008,
        -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008,
        16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
        4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136,
        -432, -136)  # fmt: skip
_QM2 = (-7408, -1616, 7408, 1616)
_IHN = (0, 1, 0)
_IHP = (0, 3, 2)
_WH = (0, -214, 798)
_RH2 = (2, 1, 2, 1)
# QMF coefficients h(0), h(2), ... h(22); the odd ones are these reversed (h is symmetric).
_QMF = (3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11)
_QMF_R = tuple(reversed(_QMF))


def _sat(v: int) -> int:
    return -32768 if v < -32768 else 32767 if v > 32767 else v


class _Band:
    """Predictor and scale-factor state of one sub-band (block 4 and block 3)."""

    __slots__ = ("a", "ap", "b", "bp", "d", "det", "nb", "p", "r", "s", "sp", "sz")

    def __init__(self, det: int) -> None:
        self.s = self.sp = self.sz = self.nb = 0
        self.det = det
        self.r = [0, 0, 0]
        self.p = [0, 0, 0]
        self.a = [0, 0, 0]
        self.ap = [0, 0, 0]
        self.d = [0] * 7
        self.b = [0] * 7
        self.bp = [0] * 7

    def scale(self, table_index: int, nb_limit: int, shift_base: int, weights: tuple[int, ...]
              ) -> None:  # fmt: skip
        """Blocks 3L/3H: log-domain scale factor adaptation (LOGSCL) and SCALEL/SCALEH."""
        nb = ((self.nb * 127) >> 7) + weights[table_index]
        self.nb = 0 if nb < 0 else nb_limit if nb > nb_limit else nb
        wd1 = (self.nb >> 6) & 31
        wd2 = shift_base - (self.nb >> 11)
        wd3 = _ILB[wd1] << -wd2 if wd2 < 0 else _ILB[wd1] >> wd2
        self.det = wd3 << 2

    def predict(self, d: int) -> None:
        """Block 4: reconstruct, adapt the pole and zero predictors, predict the next sample."""
        r, p, a, ap, dd, b, bp = self.r, self.p, self.a, self.ap, self.d, self.b, self.bp
        dd[0] = d
        r[0] = _sat(self.s + d)  # RECONS
        p[0] = _sat(self.sz + d)  # PARREC
        sg0, sg1, sg2 = p[0] >> 15, p[1] >> 15, p[2] >> 15
        # UPPOL2
        wd1 = _sat(a[1] << 2)
        wd2 = -wd1 if sg0 == sg1 else wd1
        wd2 = min(wd2, 32767)
        wd3 = (wd2 >> 7) + (128 if sg0 == sg2 else -128) + ((a[2] * 32512) >> 15)
        ap[2] = -12288 if wd3 < -12288 else 12288 if wd3 > 12288 else wd3
        # UPPOL1
        ap1 = _sat((192 if sg0 == sg1 else -192) + ((a[1] * 32640) >> 15))
        lim = _sat(15360 - ap[2])
        ap[1] = -lim if ap1 < -lim else lim if ap1 > lim else ap1
        # UPZERO
        step = 0 if d == 0 else 128
        sgd = d >> 15
        for i in range(1, 7):
            wd2 = step if (dd[i] >> 15) == sgd else -step
            bp[i] = _sat(wd2 + ((b[i] * 32640) >> 15))
        # DELAYA
        for i in range(6, 0, -1):
            dd[i] = dd[i - 1]
            b[i] = bp[i]
        for i in (2, 1):
            r[i] = r[i - 1]
            p[i] = p[i - 1]
            a[i] = ap[i]
        # FILTEP, FILTEZ, PREDIC
        self.sp = _sat(((a[1] * _sat(r[1] + r[1])) >> 15) + ((a[2] * _sat(r[2] + r[2])) >> 15))
        sz = 0
        for i in range(6, 0, -1):
            sz += (b[i] * _sat(dd[i] + dd[i])) >> 15
        self.sz = _sat(sz)
        self.s = _sat(self.sp + self.sz)


class G722Encoder:
    """Stateful encoder: 16-bit 16 kHz samples in, one octet per two samples out."""

    def __init__(self) -> None:
        self._x = [0] * 24
        self._low = _Band(32)
        self._high = _Band(8)

    def encode(self, samples: array.array | list[int]) -> bytes:
        if len(samples) % 2:
            raise ValueError("G.722 encodes pairs of samples: give an even count")
        out = bytearray()
        x, low, high = self._x, self._low, self._high
        for j in range(0, len(samples), 2):
            # Transmit QMF: shift in two samples, keep every other output.
            del x[:2]
            x.append(samples[j])
            x.append(samples[j + 1])
            odd = sum(x[2 * i] * _QMF[i] for i in range(12))
            even = sum(x[2 * i + 1] * _QMF_R[i] for i in range(12))
            xlow = (even + odd) >> 14
            xhigh = (even - odd) >> 14
            ilow = self._encode_low(xlow, low)
            ihigh = self._encode_high(xhigh, high)
            out.append((ihigh << 6) | ilow)
        return bytes(out)

    @staticmethod
    def _encode_low(xlow: int, band: _Band) -> int:
        el = _sat(xlow - band.s)  # SUBTRA
        wd = el if el >= 0 else -(el + 1)
        i = 1
        while i < 30 and wd >= (_Q6[i] * band.det) >> 12:  # QUANTL
            i += 1
        ilow = _ILN[i] if el < 0 else _ILP[i]
        ril = ilow >> 2
        dlow = (band.det * _QM4[ril]) >> 15  # INVQAL
        band.scale(_RL42[ril], 18432, 8, _WL)
        band.predict(dlow)
        return ilow

    @staticmethod
    def _encode_high(xhigh: int, band: _Band) -> int:
        eh = _sat(xhigh - band.s)
        wd = eh if eh >= 0 else -(eh + 1)
        mih = 2 if wd >= (564 * band.det) >> 12 else 1  # QUANTH
        ihigh = _IHN[mih] if eh < 0 else _IHP[mih]
        dhigh = (band.det * _QM2[ihigh]) >> 15  # INVQAH
        band.scale(_RH2[ihigh], 22528, 10, _WH)
        band.predict(dhigh)
        return ihigh


class G722Decoder:
    """Stateful decoder: octets in, 16-bit 16 kHz samples out (two per octet)."""

    def __init__(self) -> None:
        self._x = [0] * 24
        self._low = _Band(32)
        self._high = _Band(8)

    def decode(self, data: bytes) -> array.array:
        out = array.array("h")
        x, low, high = self._x, self._low, self._high
        for code in data:
            ilow, ihigh = code & 0x3F, (code >> 6) & 0x03
            # Lower band: INVQBL with the 6-bit table, RECONS, LIMIT; then adapt.
            rlow = low.s + ((low.det * _QM6[ilow]) >> 15)
            rlow = -16384 if rlow < -16384 else 16383 if rlow > 16383 else rlow
            dlow = (low.det * _QM4[ilow >> 2]) >> 15
            low.scale(_RL42[ilow >> 2], 18432, 8, _WL)
            low.predict(dlow)
            # Higher band.
            dhigh = (high.det * _QM2[ihigh]) >> 15
            rhigh = dhigh + high.s
            rhigh = -16384 if rhigh < -16384 else 16383 if rhigh > 16383 else rhigh
            high.scale(_RH2[ihigh], 22528, 10, _WH)
            high.predict(dhigh)
            # Receive QMF.
            del x[:2]
            x.append(rlow + rhigh)
            x.append(rlow - rhigh)
            out.append(_sat(sum(x[2 * i + 1] * _QMF_R[i] for i in range(12)) >> 11))
            out.append(_sat(sum(x[2 * i] * _QMF[i] for i in range(12)) >> 11))
        return out
