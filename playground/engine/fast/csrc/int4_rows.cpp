// Int4 weight rows against up to 8 rows of x per pass (see kernels.h for the layout), and seg_rows' dispatch.
//
//   fp32/avx512  one group of one row = 16 bytes -> 16 dword lanes (vpmovzxbd); a 16-entry table q*scale+offset is
//                indexed by the low nibbles (vpermps reads an index's low 4 bits), then by the high ones (>> 4):
//                each weight is dequantized by one permute and FMA'd into fp32 accumulators;
//   fp32/avx2    nibbles -> int32 -> fp32 (vpmovzxbd, vcvtdq2ps); per group scale * sum(q x) + offset * sum(x);
//   fp32/vnni512 x rounded to int16 per group and split into its two bytes (XPrep::xh4 / xl4): four groups' 64
//                bytes, low nibbles and high ones against the high bytes, times 256, then the low ones (vpdpbusd),
//                one FMA per four groups. Dequantizing to fp32 costs more instructions per weight byte than DRAM
//                delivers to two cores, and so did int16 x through vpdpwssd (half the products per instruction);
//   int8/vnni512 four groups' 64 bytes, low nibbles and high ones each against the matching xq4 bytes
//                (vpdpbusd), one FMA per four groups;
//   int8/*       a group's 16 bytes, broadcast to both halves of a ymm, shifted by 0 / 4 and masked: 32 nibbles
//                as bytes in x's order; one vpdpbusd (AVX512-VNNI or AVX-VNNI), or vpmaddubsw + vpmaddwd (AVX2),
//                gives 8 int32 partial sums, converted and FMA'd with scale * x_scale;
//   scalar       the same sums in plain C++ (both modes).
#include <algorithm>
#include <atomic>

#include "kernels.h"
#include "rows.h"
#include "simd.h"
#include "vnni_quads.h"

namespace pg {

// int4 and int5 rows: blk.sc / blk.of hold the rows' scales and offsets in fp32 (implied ones included).
void nibble_rows_scalar(const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1) {
  const XPrep& x = *a.x;
  const int64_t G = x.G, Gp = x.Gp, K = x.K, rb = row_bytes(*a.s);
  const bool int5 = a.s->kind == kInt5;
  uint8_t q[kGroup];
  for (int64_t n = blk.n0; n < n1; ++n) {
    const uint8_t* row = a.s->q + n * rb;
    const float* sc = blk.sc + (n - blk.n0) * G;
    const float* of = blk.of + (n - blk.n0) * G;
    for (int64_t t = t0; t < t0 + tn; ++t) {
      const float* sx = offset_sums(x) + t * Gp;
      float acc = 0.f;
      for (int64_t g = 0; g < G; ++g) {
        if (int5) {
          int5_group_values(row, g, q, a.s->k5);
        } else {
          for (int j = 0; j < 16; ++j) {
            q[j] = row[g * 16 + j] & 15;
            q[j + 16] = row[g * 16 + j] >> 4;
          }
        }
        float d = 0.f;
        if (x.int8_x) {
          const int8_t* xg = x.xq + t * K + g * kGroup;
          int32_t s = 0;
          for (int j = 0; j < kGroup; ++j) s += q[j] * xg[j];
          d = static_cast<float>(s) * x.xs[t * Gp + g];
        } else {
          const float* xg = x.x + t * K + g * kGroup;
          for (int j = 0; j < kGroup; ++j) d += static_cast<float>(q[j]) * xg[j];
        }
        acc += sc[g] * d + of[g] * sx[g];
      }
      a.out[t * a.ldo + n] = acc;
    }
  }
}

#if PG_X86

// ---------------------------------------------------------------- fp32 x, AVX2 + FMA ------------------------------

template <int TT>
PG_TARGET_AVX2 void int4_rows_avx2(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  const XPrep& xp = *a.x;
  const __m256i mask = _mm256_set1_epi32(15);
  const int64_t G = xp.G, Gp = xp.Gp, K = xp.K;
  const float* x = xp.x + t0 * K;
  Pending<TT> pending;
  pending.first = blk.n0;
  for (int64_t n = blk.n0; n < n1; ++n) {
    prefetch_row(*a.s, n + a.prefetch_rows, K / 2);
    const float* sc = blk.sc + (n - blk.n0) * G;
    const float* of = blk.of + (n - blk.n0) * G;
    const uint8_t* row = a.s->q + n * (K / 2);
    __m256 acc[TT];
    for (int t = 0; t < TT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t g = 0; g < G; ++g) {
      const uint8_t* b = row + g * 16;
      const __m256i b0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b)));
      const __m256i b1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 8)));
      const __m256 w0 = _mm256_cvtepi32_ps(_mm256_and_si256(b0, mask));  // q[0..7]
      const __m256 w1 = _mm256_cvtepi32_ps(_mm256_and_si256(b1, mask));  // q[8..15]
      const __m256 w2 = _mm256_cvtepi32_ps(_mm256_srli_epi32(b0, 4));    // q[16..23]
      const __m256 w3 = _mm256_cvtepi32_ps(_mm256_srli_epi32(b1, 4));    // q[24..31]
      const __m256 s = _mm256_broadcast_ss(sc + g);
      for (int t = 0; t < TT; ++t) {
        const float* xg = x + t * K + g * kGroup;
        __m256 p = _mm256_mul_ps(w0, _mm256_loadu_ps(xg));
        __m256 r = _mm256_mul_ps(w2, _mm256_loadu_ps(xg + 16));
        p = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xg + 8), p);
        r = _mm256_fmadd_ps(w3, _mm256_loadu_ps(xg + 24), r);
        acc[t] = _mm256_fmadd_ps(s, _mm256_add_ps(p, r), acc[t]);
      }
    }
    for (int t = 0; t < TT; ++t) {
      pending.r[t][pending.count] = _mm256_add_ps(acc[t], dot8(_mm256_setzero_ps(), of, xp.sumx + (t0 + t) * Gp, Gp));
    }
    if (++pending.count == 8) flush(pending, a, t0);
  }
  if (pending.count) flush(pending, a, t0);
}

// ---------------------------------------------------------------- fp32 x, AVX-512 ---------------------------------

template <int TT>
PG_TARGET_AVX512 PG_INLINE void group_avx512(__m512 (&acc)[TT][2], const uint8_t* row, const float* sc,
                                             const float* of, const float* x, int64_t K, int64_t g) {
  const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 table = _mm512_fmadd_ps(iota, _mm512_set1_ps(sc[g]), _mm512_set1_ps(of[g]));  // q * scale + offset
  const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + g * 16)));
  const __m512 wlo = _mm512_permutexvar_ps(b, table);                        // q[0..15], dequantized
  const __m512 whi = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), table);  // q[16..31]
  for (int t = 0; t < TT; ++t) {
    const float* xg = x + t * K + g * kGroup;
    acc[t][0] = _mm512_fmadd_ps(wlo, _mm512_loadu_ps(xg), acc[t][0]);
    acc[t][1] = _mm512_fmadd_ps(whi, _mm512_loadu_ps(xg + 16), acc[t][1]);
  }
}

template <int TT>
PG_TARGET_AVX512 void int4_rows_avx512(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  constexpr int U = TT <= 2 ? 2 : 1;  // groups in flight per step, so small T has enough independent FMA chains
  const XPrep& xp = *a.x;
  const int64_t G = xp.G, K = xp.K;
  const float* x = xp.x + t0 * K;
  Pending<TT> pending;
  pending.first = blk.n0;
  for (int64_t n = blk.n0; n < n1; ++n) {
    prefetch_row(*a.s, n + a.prefetch_rows, K / 2);
    const float* sc = blk.sc + (n - blk.n0) * G;
    const float* of = blk.of + (n - blk.n0) * G;
    const uint8_t* row = a.s->q + n * (K / 2);
    __m512 acc[U][TT][2];
    for (int u = 0; u < U; ++u)
      for (int t = 0; t < TT; ++t) acc[u][t][0] = acc[u][t][1] = _mm512_setzero_ps();
    int64_t g = 0;
    for (; g + U <= G; g += U)
      for (int u = 0; u < U; ++u) group_avx512<TT>(acc[u], row, sc, of, x, K, g + u);
    for (; g < G; ++g) group_avx512<TT>(acc[0], row, sc, of, x, K, g);
    for (int t = 0; t < TT; ++t) {
      __m512 s = _mm512_add_ps(acc[0][t][0], acc[0][t][1]);
      for (int u = 1; u < U; ++u) s = _mm512_add_ps(s, _mm512_add_ps(acc[u][t][0], acc[u][t][1]));
      const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1));
      pending.r[t][pending.count] = _mm256_add_ps(_mm512_castps512_ps256(s), hi);
    }
    if (++pending.count == 8) flush(pending, a, t0);
  }
  if (pending.count) flush(pending, a, t0);
}

// ---------------------------------------------------------------- int8 x ------------------------------------------
// The same body for three dot-product instructions, each compiled for its own target.

#define PG_DOT_AVX2(w, xv) _mm256_madd_epi16(_mm256_maddubs_epi16(w, xv), _mm256_set1_epi16(1))
#define PG_DOT_VNNI512(w, xv) _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, xv)
#define PG_DOT_AVXVNNI(w, xv) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w, xv)

// One group g of one row into accumulator set U (two sets, so T=1 has two independent FMA chains).
// Low half of w: the low nibbles (q[0..15]), high half: the high ones (q[16..31]), as bytes in x's order.
#define PG_INT4_INT8_GROUP(DOT, U, g)                                                                              \
  {                                                                                                                \
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + (g) * 16));                           \
    const __m256i w = _mm256_and_si256(_mm256_srlv_epi64(_mm256_broadcastsi128_si256(b), shift), low4);            \
    for (int t = 0; t < TT; ++t) {                                                                                 \
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + t * K + (g) * kGroup));          \
      const __m256i p = DOT(w, xv);                                                                                \
      acc[t][U] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_broadcast_ss(d + t * Gp + (g)), acc[t][U]);        \
    }                                                                                                              \
  }

// STREAM: prefetch_ahead in the loop (the AVX2-class kernels), else a row's lines at its start (AVX-512).
#define PG_DEFINE_INT4_INT8(NAME, TARGET, DOT, STREAM)                                                             \
  template <int TT>                                                                                                \
  TARGET void NAME(const Args& a, const Block& blk, int64_t t0, int64_t n1) {                                      \
    const XPrep& xp = *a.x;                                                                                        \
    const __m256i shift = _mm256_setr_epi64x(0, 0, 4, 4);                                                         \
    const __m256i low4 = _mm256_set1_epi8(15);                                                                     \
    const int64_t G = xp.G, Gp = xp.Gp, K = xp.K;                                                                  \
    const int8_t* xq = xp.xq + t0 * K;                                                                             \
    float* d = blk.scratch; /* [TT, Gp]: scale * x_scale */                                                        \
    const float* sums = offset_sums(xp); /* the int8 mode: x's sums as rounded */                                \
    Pending<TT> pending;                                                                                           \
    pending.first = blk.n0;                                                                                        \
    for (int64_t n = blk.n0; n < n1; ++n) {                                                                        \
      if (!(STREAM)) prefetch_row(*a.s, n + a.prefetch_rows, K / 2);                                               \
      const float* sc = blk.sc + (n - blk.n0) * G;                                                                 \
      const float* of = blk.of + (n - blk.n0) * G;                                                                 \
      const uint8_t* row = a.s->q + n * (K / 2);                                                                   \
      for (int t = 0; t < TT; ++t) {                                                                               \
        const float* xs = xp.xs + (t0 + t) * Gp;                                                                   \
        for (int64_t g = 0; g < Gp; g += 8)                                                                        \
          _mm256_storeu_ps(d + t * Gp + g, _mm256_mul_ps(_mm256_loadu_ps(sc + g), _mm256_loadu_ps(xs + g)));      \
      }                                                                                                            \
      __m256 acc[TT][2];                                                                                           \
      for (int t = 0; t < TT; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();                                    \
      int64_t g = 0;                                                                                               \
      for (; g + 2 <= G; g += 2) {                                                                                 \
        if ((STREAM) && g % 4 == 0) prefetch_ahead(row + g * 16); /* a line: 4 groups */                           \
        PG_INT4_INT8_GROUP(DOT, 0, g)                                                                              \
        PG_INT4_INT8_GROUP(DOT, 1, g + 1)                                                                          \
      }                                                                                                            \
      if (g < G) {                                                                                                 \
        PG_INT4_INT8_GROUP(DOT, 0, g)                                                                              \
      }                                                                                                            \
      for (int t = 0; t < TT; ++t)                                                                                 \
        pending.r[t][pending.count] = _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]),                            \
                                                  dot8(_mm256_setzero_ps(), of, sums + (t0 + t) * Gp, Gp));        \
      if (++pending.count == 8) flush(pending, a, t0);                                                             \
    }                                                                                                              \
    if (pending.count) flush(pending, a, t0);                                                                      \
  }

// ---------------------------------------------------------------- AVX512-VNNI: integers ------------------------
// fp32 x as int16 on AVX2 (XPrep::x16p): a 32-byte load is two groups' nibble bytes, and each 16-bit lane holds
// four nibbles (k = 2i, 16 + 2i, 2i + 1, 17 + 2i of its group); masks and shifts within the lanes give the four
// int16 vectors in x16p's order, each multiplied by x in vpmaddwd (16 products each, summed in pairs to int32: per
// 64 weights 4 multiply instructions, as the int8 mode's vpmaddubsw + vpmaddwd; splitting x into two bytes for
// vpmaddubsw took 6, and the multiplier is what two AVX2 cores run out of). Lanes 0-3 are group g's, 4-7 group
// g+1's: one FMA with the two groups' scales per pair (the loop and the offsets: pair_rows in rows.h). Widening by
// vpunpck{l,h}bw took one instruction more, four of them shuffles, at the same measured speed on Zen 3;
// dequantizing to fp32 read the weights at a third of the memory's rate.

// Pair p's 32 bytes of nibbles (a last odd group: its 16, the upper half zero).
PG_TARGET_AVX2 PG_INLINE __m256i pair_bytes(const uint8_t* row, int64_t p, bool half) {
  return half ? _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + p * 32)))
              : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + p * 32));
}

// Pair p's 32 bytes (x16p holds zeros past a last odd group) widened to int16.
struct Int4X16Pair {
  static const int16_t* x(const XPrep& xp) { return xp.x16p; }
  static constexpr int64_t kBytes = 32;
  static constexpr bool kQuad = false;
  template <int TT>
  PG_TARGET_AVX2 static PG_INLINE void load(__m256 (&acc)[TT], const uint8_t* row, bool half, const int16_t* x16,
                                            int64_t stride, const float* d, int64_t Gp, int64_t p) {
    const __m256i low4 = _mm256_set1_epi16(15);
    const __m256i w = pair_bytes(row, p, half);
    x16_pair<TT>(acc, _mm256_and_si256(w, low4), _mm256_and_si256(_mm256_srli_epi16(w, 4), low4),
                 _mm256_and_si256(_mm256_srli_epi16(w, 8), low4), _mm256_srli_epi16(w, 12), x16, stride, d, Gp, p);
  }
};

template <int TT>
PG_TARGET_AVX2 void int4_rows_x16_avx2(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  pair_rows<TT, Int4X16Pair>(a, blk, t0, n1, a.x->K / 2);
}

// The int8 mode on AVX2 (XPrep::x8p): the same 32-byte load of two groups' nibble bytes, masked (their q[0..15])
// and shifted (q[16..31]), each against x's bytes in vpmaddubsw (unsigned nibbles, signed x; a pair of products
// is at most 2 * 15 * 127, so the two results add in int16 without saturating), one vpmaddwd by ones to int32:
// 3 multiplies and 3 unpacking operations per 64 weights where the int16 kernel takes 4 and 7. Lanes 0-3 are group
// 2p's sums, 4-7 group 2p+1's, as in x16_pair.
struct Int4X8Pair {
  static const int8_t* x(const XPrep& xp) { return xp.x8p; }
  static constexpr int64_t kBytes = 32;
  static constexpr bool kQuad = false;
  template <int TT>
  PG_TARGET_AVX2 static PG_INLINE void load(__m256 (&acc)[TT], const uint8_t* row, bool half, const int8_t* x8,
                                            int64_t stride, const float* d, int64_t Gp, int64_t p) {
    const __m256i low4 = _mm256_set1_epi8(15);
    const __m256i w = pair_bytes(row, p, half);
    const __m256i lo = _mm256_and_si256(w, low4), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), low4);
    x8_pair<TT>(acc, lo, hi, x8, stride, d, Gp, p);
  }
};

template <int TT>
PG_TARGET_AVX2 void int4_rows_x8_avx2(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  pair_rows<TT, Int4X8Pair>(a, blk, t0, n1, a.x->K / 2);
}

PG_DEFINE_INT4_INT8(int4_rows_int8_avx2, PG_TARGET_AVX2, PG_DOT_AVX2, true)
PG_DEFINE_INT4_INT8(int4_rows_int8_vnni512, PG_TARGET_VNNI512, PG_DOT_VNNI512, false)
#if PG_HAVE_AVXVNNI
PG_DEFINE_INT4_INT8(int4_rows_int8_avxvnni, PG_TARGET_AVXVNNI, PG_DOT_AVXVNNI, true)
#endif

bool int4_reads_halves(int isa, const XPrep& xp) {
  if (isa != kAvx512) return xp.x16p != nullptr || xp.x8p != nullptr;
  return xp.int8_x ? cpu().int8_dot == 3 && xp.xq4 : xp.xh4 != nullptr;
}

void int4_rows_simd(int isa, const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1) {
  if (a.x->x8p) {  // the int8 mode on AVX2
    PG_DISPATCH_T(int4_rows_x8_avx2, tn, a, blk, t0, n1)
    return;
  }
  if (a.x->x16p) {  // fp32 x as int16 (see prepare_x16_avx2)
    PG_DISPATCH_T(int4_rows_x16_avx2, tn, a, blk, t0, n1)
    return;
  }
  if (!a.x->int8_x) {
    if (a.x->xh4 && symmetric(*a.s)) {  // the quad kernels (vnni_quads.h)
      PG_DISPATCH_T(int4_quad_sym, tn, a, blk, t0, n1)
    } else if (a.x->xh4) {
      PG_DISPATCH_T(int4_quad_asym, tn, a, blk, t0, n1)
    } else if (isa == kAvx512) {
      PG_DISPATCH_T(int4_rows_avx512, tn, a, blk, t0, n1)
    } else {
      PG_DISPATCH_T(int4_rows_avx2, tn, a, blk, t0, n1)
    }
    return;
  }
  const int dot = isa == kAvx512 ? cpu().int8_dot : std::min(cpu().int8_dot, 1);
  if (int4_reads_halves(isa, *a.x) && a.x->c4 && symmetric(*a.s)) {
    PG_DISPATCH_T(int4_quad_sym, tn, a, blk, t0, n1)
  } else if (int4_reads_halves(isa, *a.x)) {
    PG_DISPATCH_T(int4_quad_asym, tn, a, blk, t0, n1)
  } else if (dot == 3) {
    PG_DISPATCH_T(int4_rows_int8_vnni512, tn, a, blk, t0, n1)
#if PG_HAVE_AVXVNNI
  } else if (dot == 2) {
    PG_DISPATCH_T(int4_rows_int8_avxvnni, tn, a, blk, t0, n1)
#endif
  } else {
    PG_DISPATCH_T(int4_rows_int8_avx2, tn, a, blk, t0, n1)
  }
}

#endif  // PG_X86

// ---------------------------------------------------------------- dispatch ----------------------------------------

static std::atomic<bool> g_exact_fp32{false};

void set_exact_fp32(bool on) { g_exact_fp32 = on; }
bool exact_fp32() { return g_exact_fp32; }
bool int16_x(int isa) { return (quad_kernel(isa) || x16_avx2(isa)) && !g_exact_fp32; }

bool x16_avx2(int isa) {
#if PG_X86
  return isa == kAvx2;
#else
  (void)isa;
  return false;
#endif
}

bool quad_kernel(int isa) {
#if PG_X86
  return isa == kAvx512 && cpu().int8_dot == 3;
#else
  (void)isa;
  return false;
#endif
}

// Rows [blk.n0, n1) against all T rows of x, kMaxT at a time.
static void rows_block(int isa, const Args& a, const Block& blk, int64_t T, int64_t n1) {
  for (int64_t t0 = 0; t0 < T; t0 += kMaxT) {
    const int64_t tn = std::min(kMaxT, T - t0);
    const bool int4 = a.s->kind == kInt4;
    if (a.s->kind == kInt5) {
#if PG_X86
      if (isa != kScalar && int5_simd(isa, *a.s, *a.x)) {
        int5_rows_simd(a, blk, t0, tn, n1);
        continue;
      }
#endif
      nibble_rows_scalar(a, blk, t0, tn, n1);
      continue;
    }
    if (a.s->kind == kInt6) {
#if PG_X86
      if (isa != kScalar && int6_simd(*a.x)) {
        int6_rows_simd(a, blk, t0, tn, n1);
        continue;
      }
#endif
      int6_rows_scalar(a, blk, t0, tn, n1);
      continue;
    }
#if PG_X86
    if (isa != kScalar) {
      if (int4) {
        int4_rows_simd(isa, a, blk, t0, tn, n1);
      } else {
        int8_rows_simd(isa, a, blk, t0, tn, n1);
      }
      continue;
    }
#endif
    if (int4) {
      nibble_rows_scalar(a, blk, t0, tn, n1);
    } else {
      int8_rows_scalar(a, blk, t0, tn, n1);
    }
  }
}

int64_t seg_scratch_floats(int64_t G) {
  const int64_t Gp = (G + 7) / 8 * 8;
  return 2 * (kRowBlock * G + 8) + kMaxT * Gp;
}

void seg_rows(int isa, const QSeg& s, const XPrep& xp, int64_t n0, int64_t n1, float* out, int64_t ldo,
              float* scratch) {
  const int64_t G = xp.G;
  const int64_t ahead = s.kind == kInt6 ? kPrefetchBytesInt6 : kPrefetchBytes;
  Args a{&s, &xp, out, ldo, std::max<int64_t>(1, ahead / row_bytes(s))};
  const int64_t params = kRowBlock * G + 8;
  float* bsc = scratch;
  float* bof = bsc + params;
#if PG_X86
  const bool halves = isa != kScalar && s.kind != kInt6 &&
                      (s.kind == kInt5 ? int5_simd(isa, s, xp)
                       : s.kind == kInt4 ? int4_reads_halves(isa, xp) : int8_reads_halves(xp));
#else
  const bool halves = false;
#endif
  for (int64_t b0 = n0; b0 < n1; b0 += kRowBlock) {
    const int64_t b1 = std::min(n1, b0 + kRowBlock);
    prefetch_params(s, G, b1, std::min(n1, b1 + kRowBlock));  // the next block's
    if (halves) {
      rows_block(isa, a, Block{nullptr, nullptr, bof + params, b0}, xp.T, b1);
      continue;
    }
    if (s.kind == kInt6) {  // reads its params itself; the plain path's scratch: a dequantized row
      rows_block(isa, a, Block{nullptr, nullptr, bsc, b0}, xp.T, b1);
      continue;
    }
    params_to_floats(isa, s, b0, b1, bsc, nibble_kind(s.kind) ? bof : nullptr);
    std::fill_n(bsc + (b1 - b0) * G, 8, 0.f);
    if (nibble_kind(s.kind)) std::fill_n(bof + (b1 - b0) * G, 8, 0.f);
    rows_block(isa, a, Block{bsc, bof, bof + params, b0}, xp.T, b1);
  }
}

}  // namespace pg
