// Int5 weight rows (GGUF's Q5_0, Q5_1 and Q5_K at their five bits; kernels.h gives the layout) against up to 8 rows
// of x per pass.
//
//   avx2    int4's pair kernels (pair_rows in rows.h) on a pair of groups' values as bytes with their fifth bits
//           (int5_bytes): against x's bytes in the int8 mode (x8p), or taken apart into int16 lanes in the fp32
//           mode (x16p). Held as int8 (what these types were before) a Q5 weight cost 1.0625 bytes; this is 0.6875
//           (0.625 for Q5_0).
//   vnni512 int4's AVX512-VNNI kernels (quad_rows in vnni_quads.h) on 4 groups' values as bytes with their
//           fifth bits, against x in the quad order (xq4, or xh4 / xl4).
//   scalar  int4's plain loop (nibble_rows_scalar), the values unpacked per group by int5_group_values.
#include <algorithm>

#include "kernels.h"
#include "rows.h"
#include "simd.h"
#include "vnni_quads.h"

namespace pg {

void int5_group_values(const uint8_t* row, int64_t g, uint8_t* q, bool k5) {
  const uint8_t* quad = row + g / 8 * int5_quad_bytes(k5);
  const int shift = static_cast<int>(g % 8 / 2 * 2);
  if (k5) {  // nibble g % 2 of the pair's 32 bytes, fifth bit 2r + g % 2 of qh[j]
    const uint8_t* nib = quad + 32 + g % 8 / 2 * 32;
    const int v = static_cast<int>(g % 2);
    for (int j = 0; j < 32; ++j) {
      q[j] = static_cast<uint8_t>(((nib[j] >> 4 * v) & 15) | ((quad[j] >> (shift + v)) & 1) << 4);
    }
    return;
  }
  const uint8_t* nib = quad + 32 + g % 8 * 16;
  const uint8_t* fifth = quad + g % 2 * 16;
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<uint8_t>((nib[j] & 15) | ((fifth[j] >> shift) & 1) << 4);
    q[j + 16] = static_cast<uint8_t>((nib[j] >> 4) | ((fifth[j] >> (shift + 1)) & 1) << 4);
  }
}

void dequant_row_int5_scalar(const QSeg& s, int64_t n, float* out) {
  const int64_t G = s.K / kGroup;
  const uint8_t* row = s.q + n * row_bytes(s);
  uint8_t q[kGroup];
  for (int64_t g = 0; g < G; ++g) {
    const float sc = group_scale(s, n, g), of = group_offset(s, n, g);
    int5_group_values(row, g, q, s.k5);
    for (int j = 0; j < kGroup; ++j) out[g * kGroup + j] = static_cast<float>(q[j]) * sc + of;
  }
}

#if PG_X86

// Fifth bits at bit `from` of each byte (bits of other bytes shifted in are masked off), moved to bit 4.
template <int FROM>
PG_TARGET_AVX2 PG_INLINE __m256i fifth_at4(__m256i f) {
  const __m256i bit4 = _mm256_set1_epi8(16);
  if constexpr (FROM <= 4) return _mm256_and_si256(_mm256_slli_epi16(f, 4 - FROM), bit4);
  else return _mm256_and_si256(_mm256_srli_epi16(f, FROM - 4), bit4);
}

// Pair p of a row as two vectors of bytes 0..31: its 32 nibble bytes' low nibbles (lo: q[0..15] of groups 2p and
// 2p + 1) and high ones (hi: q[16..31]), each with its fifth bit: pair r = p % 4 of its quad has them at bits 2r
// (low nibbles) and 2r + 1 (high ones) of the quad's 32 bytes of fifth bits, moved to bit 4 by one shift each (R:
// r known when compiled, the quad loop; -1: shifted by 2r first). A last odd group: its 16 nibble bytes, the upper
// half zero.
template <int R>
PG_TARGET_AVX2 PG_INLINE void int5_bytes(const uint8_t* row, int64_t p, bool half, __m256i& lo, __m256i& hi) {
  const uint8_t* quad = row + (p >> 2) * kInt5QuadBytes;
  const uint8_t* nib = quad + 32 + (p & 3) * 32;
  const __m256i w = half ? _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(nib)))
                         : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(nib));
  __m256i f = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quad));
  if constexpr (R < 0) f = _mm256_srl_epi16(f, _mm_cvtsi32_si128(static_cast<int>(2 * (p & 3))));
  constexpr int at = R < 0 ? 0 : 2 * R;
  const __m256i low4 = _mm256_set1_epi8(15);
  lo = _mm256_or_si256(_mm256_and_si256(w, low4), fifth_at4<at>(f));
  hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(w, 4), low4), fifth_at4<at + 1>(f));
}

// fp32 x as int16 (XPrep::x16p): int4's four int16 vectors in x16p's order (lanes k = 2i, 16 + 2i, 2i + 1, 17 + 2i
// of each lane's group) are the even and odd bytes of lo and hi.
struct Int5X16Pair {
  static const int16_t* x(const XPrep& xp) { return xp.x16p; }
  static constexpr int64_t kBytes = 40;
  static constexpr bool kQuad = true;
  template <int TT, int R = -1>
  PG_TARGET_AVX2 static PG_INLINE void load(__m256 (&acc)[TT], const uint8_t* row, bool half, const int16_t* x16,
                                            int64_t stride, const float* d, int64_t Gp, int64_t p) {
    __m256i lo, hi;
    int5_bytes<R>(row, p, half, lo, hi);
    const __m256i even = _mm256_set1_epi16(0xFF);
    x16_pair<TT>(acc, _mm256_and_si256(lo, even), _mm256_and_si256(hi, even), _mm256_srli_epi16(lo, 8),
                 _mm256_srli_epi16(hi, 8), x16, stride, d, Gp, p);
  }
};

// The int8 mode (XPrep::x8p): lo and hi against x's bytes (x8_pair).
struct Int5X8Pair {
  static const int8_t* x(const XPrep& xp) { return xp.x8p; }
  static constexpr int64_t kBytes = 40;
  static constexpr bool kQuad = true;
  template <int TT, int R = -1>
  PG_TARGET_AVX2 static PG_INLINE void load(__m256 (&acc)[TT], const uint8_t* row, bool half, const int8_t* x8,
                                            int64_t stride, const float* d, int64_t Gp, int64_t p) {
    __m256i lo, hi;
    int5_bytes<R>(row, p, half, lo, hi);
    x8_pair<TT>(acc, lo, hi, x8, stride, d, Gp, p);
  }
};

template <int TT>
PG_TARGET_AVX2 void int5_rows_x16_avx2(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  pair_rows<TT, Int5X16Pair>(a, blk, t0, n1, row_bytes(*a.s));
}

template <int TT>
PG_TARGET_AVX2 void int5_rows_x8_avx2(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  pair_rows<TT, Int5X8Pair>(a, blk, t0, n1, row_bytes(*a.s));
}

bool int5_simd(int isa, const QSeg& s, const XPrep& xp) {
  if (xp.x8p || xp.x16p) {  // AVX2's layouts (not for QSeg::k5: the loader keeps Q5_K blocks only for VNNI's)
    return !s.k5 && (xp.int8_x ? xp.x8p != nullptr : xp.x16p != nullptr);
  }
  return quad_kernel(isa) && (xp.int8_x ? xp.xq4 != nullptr : xp.xh4 != nullptr);
}

void int5_rows_simd(const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1) {
  const XPrep& x = *a.x;
  const bool sym = symmetric(*a.s) && x.c4;
  if (a.s->k5) {  // a K-quant: never symmetric
    PG_DISPATCH_T(int5k_quad_asym, tn, a, blk, t0, n1)
  } else if (x.x8p) {
    PG_DISPATCH_T(int5_rows_x8_avx2, tn, a, blk, t0, n1)
  } else if (x.x16p) {
    PG_DISPATCH_T(int5_rows_x16_avx2, tn, a, blk, t0, n1)
  } else if (sym) {
    PG_DISPATCH_T(int5_quad_sym, tn, a, blk, t0, n1)
  } else {
    PG_DISPATCH_T(int5_quad_asym, tn, a, blk, t0, n1)
  }
}

#endif  // PG_X86

}  // namespace pg
