// Int6 weight rows (GGUF's Q6_K repacked; see kernels.h for the layout) against up to 8 rows of x per pass, and
// their dequantization.
//
//   vnni512  per block (256 weights): 128 nibble bytes and 64 bytes of 2-bit pairs unpack into four vectors of
//            6-bit values in x's quad order (XPrep::xq4 / xh4 / xl4: per 4 groups their first halves, then their
//            second halves), vpdpbusd's unsigned operand against x as int8 (int8 mode) or as int16 split into its
//            two bytes (fp32 mode); one FMA per vector (its 16-weight runs' scales permuted to its lanes), and one
//            per block for the -32 offsets (the scales times -32 * the half groups' x sums, c6);
//   avx2     x rounded to int16 in the int4 kernels' pair order (XPrep::x16p): a 32-byte load of nibbles and one of
//            their 2-bit pairs make two groups' 64 values, widened to int16 by masks and shifts, multiplied by
//            vpmaddwd; each half group's sums scaled once per block (the -32 offsets through c6, as on VNNI);
//   other    (a capped ISA, exact fp32: tests) a row dequantized to fp32, then plain dot products.
// A Q6_K file stored as int8 (what it was before) cost 1.0625 bytes a weight against Q6_K's 0.82; this is 0.875.
#include <algorithm>
#include <cstring>

#include "kernels.h"
#include "row_pass.h"
#include "rows.h"
#include "simd.h"

namespace pg {

constexpr int64_t kBlockBytes = 192;  // per 256 weights: two quads' 64 nibble bytes, then 64 bytes of 2-bit pairs

// The 6-bit value of position p (0..255, x's quad order: per quad the first halves' 64, then the second halves')
// of a block.
static inline int q6_at(const uint8_t* blk, int p) {
  const int quad = p >> 7, half = (p >> 6) & 1, b = p & 63;
  const uint8_t nib = blk[64 * quad + b];
  return (half ? nib >> 4 : nib & 15) | ((blk[128 + b] >> (4 * quad + 2 * half)) & 3) << 4;
}

void dequant_row_int6_scalar(const QSeg& s, int64_t n, float* out) {
  const int64_t B = s.K / 256;
  for (int64_t b = 0; b < B; ++b) {
    const uint8_t* blk = s.q + (n * B + b) * kBlockBytes;
    const uint8_t* sc = int6_params(s, n, b);
    for (int p = 0; p < 256; ++p) {
      const int quad = p >> 7, half = (p >> 6) & 1, i = (p & 63) >> 4, j = p & 15;  // group 4 quad + i, half
      out[b * 256 + quad * 128 + i * 32 + half * 16 + j] =
          static_cast<float>(q6_at(blk, p) - 32) * int6_scale(sc, 4 * i + 2 * quad + half);
    }
  }
}

void int6_rows_scalar(const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1) {
  const XPrep& x = *a.x;
  const int64_t K = x.K;
  float* w = blk.scratch;  // K floats
  for (int64_t n = blk.n0; n < n1; ++n) {
    dequant_row_int6_scalar(*a.s, n, w);
    for (int64_t t = t0; t < t0 + tn; ++t) {
      float acc = 0.f;
      for (int64_t g = 0; g < x.G; ++g) {
        float d = 0.f;
        if (x.int8_x) {
          for (int j = 0; j < kGroup; ++j) d += w[g * kGroup + j] * x.xq[t * K + g * kGroup + j];
          d *= x.xs[t * x.Gp + g];
        } else {
          for (int j = 0; j < kGroup; ++j) d += w[g * kGroup + j] * x.x[t * K + g * kGroup + j];
        }
        acc += d;
      }
      a.out[t * a.ldo + n] = acc;
    }
  }
}

#if PG_X86

// The unpacking helpers inline into the VNNI, BF16 and plain AVX-512 functions: a target every one of them includes.
#define PG_TARGET_QUAD __attribute__((target("avx512f,avx512bw,f16c")))

// A block's 6-bit values as four vectors in x's quad order: v[0] quad 0's first halves (nibble byte b's low
// nibble; pair byte b's bits 0-1), v[1] its second halves (high nibbles; bits 2-3), v[2] / v[3] quad 1's (bits 4-5 /
// 6-7). Each pair is shifted to bits 4-5 (what a 16-bit shift carries over from the neighbour byte is masked off),
// then one ternary op takes bits 0-3 from the nibbles and 4-7 from the pair.
PG_TARGET_QUAD PG_INLINE void unpack_block(const uint8_t* blk, __m512i (&v)[4]) {
  const __m512i nib0 = _mm512_loadu_si512(blk), nib1 = _mm512_loadu_si512(blk + 64);
  const __m512i pairs = _mm512_loadu_si512(blk + 128);
  const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x30);
  constexpr int kPick = 0xE4;  // c ? a : b, bitwise (a, b, c the ternary op's operands in order)
  v[0] = _mm512_ternarylogic_epi32(nib0, _mm512_and_si512(_mm512_slli_epi16(pairs, 4), m2), m4, kPick);
  v[1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(nib0, 4), _mm512_and_si512(_mm512_slli_epi16(pairs, 2), m2), m4,
                                   kPick);
  v[2] = _mm512_ternarylogic_epi32(nib1, _mm512_and_si512(pairs, m2), m4, kPick);
  v[3] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(nib1, 4), _mm512_and_si512(_mm512_srli_epi16(pairs, 2), m2), m4,
                                   kPick);
}

// SPLIT: x as int16 split into its bytes (xh4, xl4; xs16); else int8 x (xq4; xs). Per block and row of x: one
// vpdpbusd per vector of values (two, split), lane 4i + j of vector k holding part j of group i's half-group sum;
// a 4x4 transpose-and-add (within 128-bit lanes) makes lane 4i + k the whole sum of vector k's half group i, the
// order the block's scales are stored in: one conversion and one FMA per block, no permutes. The -32 offsets' term
// is the scales times c6 (-32 * x scale * half-group sums), one FMA a block.
template <int TT, bool SPLIT>
struct Int6Pass {
  const Args& a;
  const int8_t *xh, *xl;  // xh4 (or xq4), SPLIT: xl4
  const float *xs, *c6;   // xs16 (or xs), c6
  int64_t K, Gp, C;
  __m512i xs_order;  // lane 4i + k: group i of quad k / 2 (the block's group 4 (k / 2) + i)

  PG_TARGET_VNNI512 PG_INLINE void span(int64_t n, int64_t g0, int64_t g1, __m512 (&acc)[2][TT],
                                        const Ahead& ahead) const {
    const uint8_t* row = a.s->q + n * (K / 256) * kBlockBytes;
    for (int64_t b = g0 / 8; b < g1 / 8; ++b) {
      if (ahead.burst) {
        prefetch_burst(*a.s, row, b * kBlockBytes, (b + 1) * kBlockBytes, kPrefetchBytesInt6);
      } else if (ahead.row) {
        prefetch_span(ahead, b * kBlockBytes, (b + 1) * kBlockBytes);
      }
      __m512i v[4];
      unpack_block(row + b * kBlockBytes, v);
      const __m512 s16 = int6_scales16(int6_params(*a.s, n, b));
      for (int t = 0; t < TT; ++t) {
        const __m512 xs16 = _mm512_permutexvar_ps(xs_order, _mm512_castps256_ps512(_mm256_loadu_ps(xs + t * Gp + b * 8)));
        acc[1][t] = _mm512_fmadd_ps(s16, _mm512_loadu_ps(c6 + t * C + b * 16), acc[1][t]);
        const int8_t* xq = xh + t * K + b * 256;
        __m512i p[4];
        for (int k = 0; k < 4; ++k) {
          p[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v[k], _mm512_loadu_si512(xq + 64 * k));
          if (SPLIT)
            p[k] = _mm512_dpbusd_epi32(_mm512_slli_epi32(p[k], 8), v[k], _mm512_loadu_si512(xl + t * K + b * 256 + 64 * k));
        }
        const __m512i r = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]), _mm512_unpackhi_epi32(p[0], p[1]));
        const __m512i q = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]), _mm512_unpackhi_epi32(p[2], p[3]));
        const __m512i sum = _mm512_add_epi32(_mm512_unpacklo_epi64(r, q), _mm512_unpackhi_epi64(r, q));
        acc[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(s16, xs16), acc[0][t]);
      }
    }
  }

  PG_TARGET_VNNI512 PG_INLINE void finish(int64_t, const __m512 (&acc)[2][TT], Pending<TT>& pending) const {
    for (int t = 0; t < TT; ++t) {
      const __m512 s = _mm512_add_ps(acc[0][t], acc[1][t]);
      const __m256 h = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1));
      pending.r[t][pending.count] = _mm256_add_ps(_mm512_castps512_ps256(s), h);
    }
    ++pending.count;
  }
};

template <int TT, bool SPLIT>
PG_TARGET_VNNI512 void int6_rows_vnni(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  const XPrep& xp = *a.x;
  const int64_t K = xp.K, C = K / 16;
  const Int6Pass<TT, SPLIT> pass{a, (SPLIT ? xp.xh4 : xp.xq4) + t0 * K, SPLIT ? xp.xl4 + t0 * K : nullptr,
                                 (SPLIT ? xp.xs16 : xp.xs) + t0 * xp.Gp, xp.c6 + t0 * C, K, xp.Gp, C,
                                 _mm512_setr_epi32(0, 0, 4, 4, 1, 1, 5, 5, 2, 2, 6, 6, 3, 3, 7, 7)};
  // x's eighths of a byte a value: xh4 + xl4 (or xq4), xs, c6
  pass_rows<TT, 2>(a, blk, t0, n1, xp.G, (SPLIT ? 16 : 8) + 1 + 2, pass);
}

template <int TT>
PG_TARGET_VNNI512 void int6_rows_split(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  int6_rows_vnni<TT, true>(a, blk, t0, n1);
}

template <int TT>
PG_TARGET_VNNI512 void int6_rows_int8(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  int6_rows_vnni<TT, false>(a, blk, t0, n1);
}

// A block's 16-weight runs as fp32, in weight order (run r: group r / 2's first or second half).
PG_TARGET_QUAD PG_INLINE void block_runs(const uint8_t* blk, const uint8_t* sc, __m512 (&out)[16]) {
  __m512i v[4];
  unpack_block(blk, v);
  alignas(64) uint8_t vals[4][64];
  for (int k = 0; k < 4; ++k) _mm512_store_si512(vals[k], v[k]);
  const __m512i bias = _mm512_set1_epi32(32);
  for (int quad = 0; quad < 2; ++quad) {
    for (int i = 0; i < 4; ++i) {
      for (int half = 0; half < 2; ++half) {
        const __m128i q = _mm_load_si128(reinterpret_cast<const __m128i*>(vals[2 * quad + half] + 16 * i));
        const __m512 w = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(q), bias));
        out[8 * quad + 2 * i + half] = _mm512_mul_ps(w, _mm512_set1_ps(int6_scale(sc, 4 * i + 2 * quad + half)));
      }
    }
  }
}

PG_TARGET_AVX512 void dequant_row_int6_avx512(const QSeg& s, int64_t n, float* out) {
  const int64_t B = s.K / 256;
  for (int64_t b = 0; b < B; ++b) {
    __m512 r[16];
    block_runs(s.q + (n * B + b) * kBlockBytes, int6_params(s, n, b), r);
    for (int i = 0; i < 16; ++i) _mm512_storeu_ps(out + b * 256 + 16 * i, r[i]);
  }
}

PG_TARGET_BF16 void dequant_row_int6_bf16(const QSeg& s, int64_t n, uint16_t* out) {
  const int64_t B = s.K / 256;
  for (int64_t b = 0; b < B; ++b) {
    __m512 r[16];
    block_runs(s.q + (n * B + b) * kBlockBytes, int6_params(s, n, b), r);
    for (int i = 0; i < 8; ++i)
      _mm512_storeu_si512(out + b * 256 + 32 * i, (__m512i)_mm512_cvtne2ps_pbh(r[2 * i + 1], r[2 * i]));
  }
}

// One 32-byte load of a block's nibbles (quad q's groups 2j, 2j + 1) with its pair bytes (already shifted right by 4
// for quad 1): each 16-bit lane's four 6-bit values as int16 in XPrep::x16p's order, v[0] k = 2i, v[1] 16 + 2i,
// v[2] 2i + 1, v[3] 17 + 2i (lanes 0-7 group 2j, 8-15 group 2j + 1). A lane's low byte takes the low nibble (v[0])
// or high nibble (v[1]) of nibble byte 2i and its pair bits, its high byte those of byte 2i + 1 (v[2], v[3]): the
// 6-bit values are built two to a 16-bit lane, then split.
PG_TARGET_AVX2 PG_INLINE void widen_int6(__m256i w, __m256i pairs, __m256i (&v)[4]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30), low = _mm256_set1_epi16(0xFF);
  const __m256i evens = _mm256_or_si256(_mm256_and_si256(w, m4), _mm256_and_si256(_mm256_slli_epi16(pairs, 4), m2));
  const __m256i odds = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(w, 4), m4),
                                       _mm256_and_si256(_mm256_slli_epi16(pairs, 2), m2));
  v[0] = _mm256_and_si256(evens, low);
  v[1] = _mm256_and_si256(odds, low);
  v[2] = _mm256_srli_epi16(evens, 8);
  v[3] = _mm256_srli_epi16(odds, 8);
}

// Per block (256 weights, two 32-byte loads per quad) and row of x: a load's first halves' products (v[0], v[2])
// and second halves' (v[1], v[3]) summed by vpmaddwd into two vectors, lanes 0-3 group 2j's and 4-7 group 2j+1's;
// for load j, quad 0 and quad 1's four such vectors transpose-and-add (within 128-bit lanes) into one whose lane
// 4i + 2q + h is half h of quad q's group 2j + i: the order of the block's scales 8j .. 8j + 7. Then per 8 scales
// one FMA with xs6 plus c6 (x's scales and -32 offset terms in that order) and one with the scales.
template <int TT>
PG_TARGET_AVX2 void int6_rows_x16_avx2(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  const XPrep& xp = *a.x;
  const int64_t K = xp.K, B = K / 256, C = K / 16, stride = xp.G * kGroup;  // G is even: no padding pair
  const int16_t* x16 = xp.x16p + t0 * stride;
  const float* xs6 = xp.xs6 + t0 * C;
  const float* c6 = xp.c6 + t0 * C;
  Pending<TT> pending;
  pending.first = blk.n0;
  for (int64_t n = blk.n0; n < n1; ++n) {
    const uint8_t* row = a.s->q + n * B * kBlockBytes;
    __m256 acc[TT];
    for (int t = 0; t < TT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < B; ++b) {
      const uint8_t* bp = row + b * kBlockBytes;
      for (int64_t o = 0; o < kBlockBytes; o += 64) prefetch_ahead(bp + o);
      const uint8_t* params = int6_params(*a.s, n, b);
      const __m256 d = _mm256_set1_ps(super_half(params, 16));
      for (int j = 0; j < 2; ++j) {
        const __m256i pairs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + 128 + 32 * j));
        __m256i v0[4], v1[4];
        widen_int6(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + 32 * j)), pairs, v0);
        widen_int6(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + 64 + 32 * j)),
                   _mm256_srli_epi16(pairs, 4), v1);
        const __m256 s8 = int6_scales8(params, 8 * j, d);
        for (int t = 0; t < TT; ++t) {
          const __m256i* x0 = reinterpret_cast<const __m256i*>(x16 + t * stride + (4 * b + j) * 64);
          const __m256i* x1 = x0 + 8;  // quad 1: pair 4b + 2 + j
          const __m256i f0 = _mm256_add_epi32(_mm256_madd_epi16(v0[0], _mm256_loadu_si256(x0)),
                                              _mm256_madd_epi16(v0[2], _mm256_loadu_si256(x0 + 2)));
          const __m256i h0 = _mm256_add_epi32(_mm256_madd_epi16(v0[1], _mm256_loadu_si256(x0 + 1)),
                                              _mm256_madd_epi16(v0[3], _mm256_loadu_si256(x0 + 3)));
          const __m256i f1 = _mm256_add_epi32(_mm256_madd_epi16(v1[0], _mm256_loadu_si256(x1)),
                                              _mm256_madd_epi16(v1[2], _mm256_loadu_si256(x1 + 2)));
          const __m256i h1 = _mm256_add_epi32(_mm256_madd_epi16(v1[1], _mm256_loadu_si256(x1 + 1)),
                                              _mm256_madd_epi16(v1[3], _mm256_loadu_si256(x1 + 3)));
          const __m256i r = _mm256_add_epi32(_mm256_unpacklo_epi32(f0, h0), _mm256_unpackhi_epi32(f0, h0));
          const __m256i q = _mm256_add_epi32(_mm256_unpacklo_epi32(f1, h1), _mm256_unpackhi_epi32(f1, h1));
          const __m256i sum = _mm256_add_epi32(_mm256_unpacklo_epi64(r, q), _mm256_unpackhi_epi64(r, q));
          const int64_t at = t * C + b * 16 + 8 * j;
          const __m256 scaled =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_loadu_ps(xs6 + at), _mm256_loadu_ps(c6 + at));
          acc[t] = _mm256_fmadd_ps(s8, scaled, acc[t]);
        }
      }
    }
    for (int t = 0; t < TT; ++t) pending.r[t][pending.count] = acc[t];
    if (++pending.count == 8) flush(pending, a, t0);
  }
  if (pending.count) flush(pending, a, t0);
}

PG_TARGET_AVX2 void dequant_row_int6_avx2(const QSeg& s, int64_t n, float* out) {
  const int64_t G = s.K / kGroup;
  for (int64_t g = 0; g < G; ++g) {
    for (int c = 0; c < 4; ++c) {
      const __m256 w = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(int6_chunk(s, n, g, c)));
      const float scale = int6_half_scale(s, n, g, c / 2);
      _mm256_storeu_ps(out + g * kGroup + 8 * c, _mm256_mul_ps(w, _mm256_set1_ps(scale)));
    }
  }
}

bool int6_simd(const XPrep& xp) { return xp.c6 != nullptr; }

void int6_rows_simd(const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1) {
  if (a.x->x16p) {
    PG_DISPATCH_T(int6_rows_x16_avx2, tn, a, blk, t0, n1)
  } else if (a.x->int8_x) {
    PG_DISPATCH_T(int6_rows_int8, tn, a, blk, t0, n1)
  } else {
    PG_DISPATCH_T(int6_rows_split, tn, a, blk, t0, n1)
  }
}

#endif  // PG_X86

}  // namespace pg
