// The AVX512-VNNI row kernels of int4 and int5 weights (vnni_rows in rows.h): integers, 4 groups at a time. 64
// bytes of a row are 4 groups' nibbles; their low nibbles (each group's q[0..15]) meet x's first halves in xq4's
// order, the high ones its second halves (vpdpbusd: the weights are its unsigned operand, x its signed one).
//   int8 x: xq4 (symmetric weights: from -8 (int5: -16) * the groups' xq sums);
//   int16 x (SPLIT): its high bytes xh4, times 256, then its low bytes xl4.
// FIVE (int5, kernels.h's layout): the same nibble bytes sit in a quad of 8 groups after its 32 bytes of fifth
// bits; each value's fifth bit is rotated to bit 4 of its byte (one vprolvq per vector) and ORed in: 0..31.
#pragma once

#include "kernels.h"
#include "row_pass.h"
#include "rows.h"
#include "simd.h"

#if PG_X86
namespace pg {

// Groups g..g+3 (g a multiple of 4) of a row: their q[0..15] (lo) and q[16..31] (hi) as bytes, in xq4's order.
// K5 (int5 in QSeg::k5's layout): the same bytes give groups g and g + 2's values in lo, g + 1 and g + 3's in hi
// (each 32 in order); their 16-byte quarters are then swapped into int5's order.
template <bool FIVE, bool K5 = false>
PG_TARGET_VNNI512 PG_INLINE void quad_values(const uint8_t* row, int64_t g, __m512i& lo, __m512i& hi) {
  const __m512i low4 = _mm512_set1_epi8(15);
  const uint8_t* quad = row + g / 8 * int5_quad_bytes(K5);
  const __m512i w = _mm512_loadu_si512(FIVE ? quad + 32 + g % 8 * 16 : row + g * 16);
  lo = _mm512_and_si512(w, low4);
  hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), low4);
  if (!FIVE) return;
  // Pair r = g % 8 / 2 fills the low 256 bits, pair r + 1 the high ones; fifth-bit byte b, bit 2r (+1 for the
  // high nibbles), belongs to pair r's nibble byte b: rotated left by 4 - 2r (4 - 2r - 2 for pair r + 1, mod 64)
  // it lands on bit 4 without leaving its byte.
  const __m512i f = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(quad)));
  const __m512i turn = _mm512_sub_epi64(_mm512_set1_epi64(4 - g % 8), _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2));
  const __m512i top = _mm512_set1_epi8(0x10);
  lo = _mm512_ternarylogic_epi64(lo, _mm512_rolv_epi64(f, turn), top, 0xF8);  // lo | (rotated & top)
  hi = _mm512_ternarylogic_epi64(hi, _mm512_rolv_epi64(f, _mm512_sub_epi64(turn, _mm512_set1_epi64(1))), top, 0xF8);
  if constexpr (K5) {  // lo = [g 0-15 | g 16-31 | g+2 ...], hi = [g+1 ...]: quarters 0 and 2 of each make the new lo
    const __m512i firsts = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    const __m512i seconds = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    const __m512i a = lo;
    lo = _mm512_permutex2var_epi64(a, firsts, hi);
    hi = _mm512_permutex2var_epi64(a, seconds, hi);
  }
}

// Group g of a row: its 32 values as bytes in x's order.
template <bool FIVE, bool K5 = false>
PG_TARGET_VNNI512 PG_INLINE __m256i group_values(const uint8_t* row, int64_t g) {
  if (FIVE) return _mm256_set_m128i(int5_chunk(row, g, 1, K5), int5_chunk(row, g, 0, K5));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + g * 16));
  return _mm256_and_si256(_mm256_srlv_epi64(_mm256_broadcastsi128_si256(b), _mm256_setr_epi64x(0, 0, 4, 4)),
                          _mm256_set1_epi8(15));
}

// SPLIT: int16 x as two signed bytes (XPrep::xh4 / xl4): the high bytes' sums, times 256, then the low bytes';
// else int8 x (xq4). SYM (Q4_0, Q5_0) starts from XPrep::c4 (-8 * the groups' x sums as the mode rounds them,
// doubled for int5's -16): the implied offset meets the rounded x, as in llama.cpp's Q4_0 x Q8_0 (stored offsets:
// after the loop, with x's sums as the mode rounds it in the int8 mode, exact ones in the fp32 mode; kernels.h).
template <bool SYM, bool FIVE, bool SPLIT, bool K5 = false>
struct Quad {
  static constexpr int kPer = 4;
  static constexpr bool kSym = SYM;
  static constexpr int kXEighths = (SPLIT ? 16 : 8) + (SYM ? 4 : 0) + 1;  // xh4 + xl4 or xq4, c4, xs
  const int8_t* xa;  // xq4 (its last groups past a whole 4 in xq's order), or SPLIT: xh4
  const int8_t* xb;  // SPLIT: xl4
  const int32_t* c4;
  const float* xs;  // [T, Gp] from row t0: xs, or SPLIT: xs16
  int64_t K, Gp, C;

  template <int TT>
  PG_TARGET_VNNI512 PG_INLINE void step(__m512 (&acc)[TT], const uint8_t* row, const __m512 (&d16)[TT],
                                        __m512i pick, int64_t g) const {
    __m512i lo, hi;
    quad_values<FIVE, K5>(row, g, lo, hi);
    for (int t = 0; t < TT; ++t) {
      const int8_t* a = xa + t * K + g * kGroup;
      __m512i c = SYM ? _mm512_loadu_si512(c4 + t * C + g * 4) : _mm512_setzero_si512();
      if (FIVE) c = _mm512_add_epi32(c, c);
      __m512i s = _mm512_dpbusd_epi32(SPLIT ? _mm512_setzero_si512() : c, lo, _mm512_loadu_si512(a));
      s = _mm512_dpbusd_epi32(s, hi, _mm512_loadu_si512(a + 64));
      if (SPLIT) {
        const int8_t* b = xb + t * K + g * kGroup;
        s = _mm512_slli_epi32(s, 8);
        if (SYM) s = _mm512_add_epi32(s, c);
        s = _mm512_dpbusd_epi32(s, lo, _mm512_loadu_si512(b));
        s = _mm512_dpbusd_epi32(s, hi, _mm512_loadu_si512(b + 64));
      }
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_permutexvar_ps(pick, d16[t]), acc[t]);
    }
  }

  // Groups [g0, G) (at most 3), in x's order.
  template <int TT>
  PG_TARGET_VNNI512 PG_INLINE void tail(__m256 (&out)[TT], const uint8_t* row, const QSeg& seg, int64_t n, int64_t g0,
                                        int64_t G) const {
    for (int64_t g = g0; g < G; ++g) {
      const __m256i w = group_values<FIVE, K5>(row, g);
      const float scale = group_params(seg, n, g).scale;  // (the offset: the caller's term)
      for (int t = 0; t < TT; ++t) {
        const int64_t at = t * K + g * kGroup;
        const __m256i c = SYM ? _mm256_zextsi128_si256(_mm_cvtsi32_si128((FIVE ? 2 : 1) * c4[t * C + g * 4]))
                              : _mm256_setzero_si256();
        __m256i s = _mm256_dpbusd_epi32(SPLIT ? _mm256_setzero_si256() : c, w,
                                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xa + at)));
        if (SPLIT) {
          s = _mm256_slli_epi32(s, 8);
          if (SYM) s = _mm256_add_epi32(s, c);
          s = _mm256_dpbusd_epi32(s, w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + at)));
        }
        out[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(scale * xs[t * Gp + g]), out[t]);
      }
    }
  }
};

// A row block through vnni_rows, x as the mode prepared it: int8 (xq4) or int16 split (xh4 / xl4).
template <int TT, bool SYM, bool FIVE, bool K5 = false>
PG_TARGET_VNNI512 void quad_rows(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  const XPrep& xp = *a.x;
  const int64_t C = c_stride(xp.G, 4), K = xp.K;
  const int32_t* c4 = SYM ? xp.c4 + t0 * C : nullptr;
  if (xp.int8_x) {
    const Quad<SYM, FIVE, false, K5> kern{xp.xq4 + t0 * K, nullptr, c4, xp.xs + t0 * xp.Gp, K, xp.Gp, C};
    vnni_rows<TT>(a, blk, t0, n1, kern);
  } else {
    const Quad<SYM, FIVE, true, K5> kern{xp.xh4 + t0 * K, xp.xl4 + t0 * K, c4, xp.xs16 + t0 * xp.Gp, K, xp.Gp, C};
    vnni_rows<TT>(a, blk, t0, n1, kern);
  }
}

// PG_DISPATCH_T's names (one template parameter each).
template <int TT>
constexpr auto int4_quad_sym = &quad_rows<TT, true, false>;
template <int TT>
constexpr auto int4_quad_asym = &quad_rows<TT, false, false>;
template <int TT>
constexpr auto int5_quad_sym = &quad_rows<TT, true, true>;
template <int TT>
constexpr auto int5_quad_asym = &quad_rows<TT, false, true>;
template <int TT>
constexpr auto int5k_quad_asym = &quad_rows<TT, false, true, true>;

}  // namespace pg
#endif
