// Int8 weight rows (symmetric, per group of 32 with an fp16 scale: GGUF's Q8_0 / Q6_K repacked, or our int8
// precision) against up to 8 rows of x per pass.
//
//   fp32/avx512  32 bytes -> two 16-lane int32 (vpmovsxbd) -> fp32, FMA'd with x; scale per group;
//   fp32/avx2    int16 x (int8_rows_x16_avx2); fp32 x as is (exact_fp32): the avx512 way with four 8-lane vectors;
//   vnni512      two groups' 64 bytes + 128 (unsigned) against x as int8 (int8 mode) or as int16 split into its
//                two bytes (fp32 mode), vpdpbusd, one FMA per two groups (Int8Pair);
//   int8/avx*    llama.cpp's sign trick: |w| (unsigned) times x carrying w's sign (signed), so one vpdpbusd
//                (or vpmaddubsw + vpmaddwd on AVX2) gives 8 int32 partial sums of a group; |x| <= 127 keeps
//                vpmaddubsw's pairwise int16 sums from saturating (2 * 128 * 127 < 32768);
//   scalar       the same sums in plain C++.
#include <algorithm>

#include "kernels.h"
#include "row_pass.h"
#include "rows.h"
#include "simd.h"

namespace pg {

void int8_rows_scalar(const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1) {
  const XPrep& x = *a.x;
  const int64_t G = x.G, Gp = x.Gp, K = x.K;
  for (int64_t n = blk.n0; n < n1; ++n) {
    const int8_t* row = reinterpret_cast<const int8_t*>(a.s->q) + n * K;
    const float* sc = blk.sc + (n - blk.n0) * G;
    for (int64_t t = t0; t < t0 + tn; ++t) {
      float acc = 0.f;
      for (int64_t g = 0; g < G; ++g) {
        const int8_t* w = row + g * kGroup;
        float d;
        if (x.int8_x) {
          const int8_t* xg = x.xq + t * K + g * kGroup;
          int32_t s = 0;
          for (int j = 0; j < kGroup; ++j) s += static_cast<int32_t>(w[j]) * xg[j];
          d = static_cast<float>(s) * x.xs[t * Gp + g];
        } else {
          const float* xg = x.x + t * K + g * kGroup;
          d = 0.f;
          for (int j = 0; j < kGroup; ++j) d += static_cast<float>(w[j]) * xg[j];
        }
        acc += sc[g] * d;
      }
      a.out[t * a.ldo + n] = acc;
    }
  }
}

#if PG_X86

template <int TT>
PG_TARGET_AVX512 void int8_rows_avx512(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  const XPrep& xp = *a.x;
  const int64_t G = xp.G, K = xp.K;
  const float* x = xp.x + t0 * K;
  Pending<TT> pending;
  pending.first = blk.n0;
  for (int64_t n = blk.n0; n < n1; ++n) {
    prefetch_row(*a.s, n + a.prefetch_rows, K);
    const float* sc = blk.sc + (n - blk.n0) * G;
    const uint8_t* row = a.s->q + n * K;
    __m512 acc[TT];
    for (int t = 0; t < TT; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t g = 0; g < G; ++g) {
      const uint8_t* b = row + g * kGroup;
      const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b))));
      const __m512 w1 =
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16))));
      const __m512 s = _mm512_set1_ps(sc[g]);
      for (int t = 0; t < TT; ++t) {
        const float* xg = x + t * K + g * kGroup;
        const __m512 p = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xg + 16), _mm512_mul_ps(w0, _mm512_loadu_ps(xg)));
        acc[t] = _mm512_fmadd_ps(s, p, acc[t]);
      }
    }
    for (int t = 0; t < TT; ++t) {
      const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[t]), 1));
      pending.r[t][pending.count] = _mm256_add_ps(_mm512_castps512_ps256(acc[t]), hi);
    }
    if (++pending.count == 8) flush(pending, a, t0);
  }
  if (pending.count) flush(pending, a, t0);
}

template <int TT>
PG_TARGET_AVX2 void int8_rows_avx2(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  const XPrep& xp = *a.x;
  const int64_t G = xp.G, K = xp.K;
  const float* x = xp.x + t0 * K;
  Pending<TT> pending;
  pending.first = blk.n0;
  for (int64_t n = blk.n0; n < n1; ++n) {
    prefetch_row(*a.s, n + a.prefetch_rows, K);
    const float* sc = blk.sc + (n - blk.n0) * G;
    const uint8_t* row = a.s->q + n * K;
    __m256 acc[TT];
    for (int t = 0; t < TT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t g = 0; g < G; ++g) {
      const uint8_t* b = row + g * kGroup;
      __m256 w[4];
      for (int i = 0; i < 4; ++i) {
        w[i] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 8 * i))));
      }
      const __m256 s = _mm256_broadcast_ss(sc + g);
      for (int t = 0; t < TT; ++t) {
        const float* xg = x + t * K + g * kGroup;
        __m256 p = _mm256_mul_ps(w[0], _mm256_loadu_ps(xg));
        __m256 r = _mm256_mul_ps(w[2], _mm256_loadu_ps(xg + 16));
        p = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xg + 8), p);
        r = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xg + 24), r);
        acc[t] = _mm256_fmadd_ps(s, _mm256_add_ps(p, r), acc[t]);
      }
    }
    for (int t = 0; t < TT; ++t) pending.r[t][pending.count] = acc[t];
    if (++pending.count == 8) flush(pending, a, t0);
  }
  if (pending.count) flush(pending, a, t0);
}

// fp32 x as int16 on AVX2 (XPrep::x16p): per pair of groups the two 32-byte rows' first halves side by side in one
// vector and their second halves in another (vperm2i128); each vector's even bytes and odd bytes sign-extended to
// int16 within the 16-bit lanes (shifts), which is x16p's order; four vpmaddwd, lanes 0-3 group g's sums, 4-7 group
// g+1's, one FMA with both scales. Dequantizing to fp32 needed 4 conversions and 4 FMAs per group.

// Pair p's groups (a last odd one alone: the other half zero; x16p holds zeros there) widened to int16.
struct Int8X16Pair {
  static const int16_t* x(const XPrep& xp) { return xp.x16p; }
  static constexpr int64_t kBytes = 64;
  static constexpr bool kQuad = false;
  template <int TT>
  PG_TARGET_AVX2 static PG_INLINE void load(__m256 (&acc)[TT], const uint8_t* row, bool half, const int16_t* x16,
                                            int64_t stride, const float* d, int64_t Gp, int64_t p) {
    const uint8_t* w = row + p * 2 * kGroup;
    const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    const __m256i v1 =
        half ? _mm256_setzero_si256() : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + kGroup));
    const __m256i a = _mm256_permute2x128_si256(v0, v1, 0x20), b = _mm256_permute2x128_si256(v0, v1, 0x31);
    x16_pair<TT>(acc, _mm256_srai_epi16(_mm256_slli_epi16(a, 8), 8),  // k = 0, 2, .., 14 of both groups
                 _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8),       // 16, 18, .., 30
                 _mm256_srai_epi16(a, 8),                             // 1, 3, .., 15
                 _mm256_srai_epi16(b, 8), x16, stride, d, Gp, p);     // 17, 19, .., 31
  }
};

template <int TT>
PG_TARGET_AVX2 void int8_rows_x16_avx2(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  pair_rows<TT, Int8X16Pair>(a, blk, t0, n1, a.x->K);
}

#define PG_DOT8_AVX2(w, xv) _mm256_madd_epi16(_mm256_maddubs_epi16(w, xv), _mm256_set1_epi16(1))
#define PG_DOT8_AVXVNNI(w, xv) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w, xv)

#define PG_INT8_INT8_GROUP(DOT, U, g)                                                                              \
  {                                                                                                                \
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + (g) * kGroup));                    \
    const __m256i aw = _mm256_sign_epi8(w, w);                                                                     \
    for (int t = 0; t < TT; ++t) {                                                                                 \
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + t * K + (g) * kGroup));          \
      const __m256i p = DOT(aw, _mm256_sign_epi8(xv, w));                                                          \
      acc[t][U] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_broadcast_ss(d + t * Gp + (g)), acc[t][U]);        \
    }                                                                                                              \
  }

#define PG_DEFINE_INT8_INT8(NAME, TARGET, DOT)                                                                     \
  template <int TT>                                                                                                \
  TARGET void NAME(const Args& a, const Block& blk, int64_t t0, int64_t n1) {                                      \
    const XPrep& xp = *a.x;                                                                                        \
    const int64_t G = xp.G, Gp = xp.Gp, K = xp.K;                                                                  \
    const int8_t* xq = xp.xq + t0 * K;                                                                             \
    float* d = blk.scratch;                                                                                        \
    Pending<TT> pending;                                                                                           \
    pending.first = blk.n0;                                                                                        \
    for (int64_t n = blk.n0; n < n1; ++n) {                                                                        \
      const float* sc = blk.sc + (n - blk.n0) * G;                                                                 \
      const uint8_t* row = a.s->q + n * K;                                                                         \
      for (int t = 0; t < TT; ++t) {                                                                               \
        const float* xs = xp.xs + (t0 + t) * Gp;                                                                   \
        for (int64_t g = 0; g < Gp; g += 8)                                                                        \
          _mm256_storeu_ps(d + t * Gp + g, _mm256_mul_ps(_mm256_loadu_ps(sc + g), _mm256_loadu_ps(xs + g)));      \
      }                                                                                                            \
      __m256 acc[TT][2];                                                                                           \
      for (int t = 0; t < TT; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();                                    \
      int64_t g = 0;                                                                                               \
      for (; g + 2 <= G; g += 2) {                                                                                 \
        prefetch_ahead(row + g * kGroup); /* a line: 2 groups */                                                   \
        PG_INT8_INT8_GROUP(DOT, 0, g)                                                                              \
        PG_INT8_INT8_GROUP(DOT, 1, g + 1)                                                                          \
      }                                                                                                            \
      if (g < G) {                                                                                                 \
        PG_INT8_INT8_GROUP(DOT, 0, g)                                                                              \
      }                                                                                                            \
      for (int t = 0; t < TT; ++t) pending.r[t][pending.count] = _mm256_add_ps(acc[t][0], acc[t][1]);             \
      if (++pending.count == 8) flush(pending, a, t0);                                                             \
    }                                                                                                              \
    if (pending.count) flush(pending, a, t0);                                                                      \
  }

PG_DEFINE_INT8_INT8(int8_rows_int8_avx2, PG_TARGET_AVX2, PG_DOT8_AVX2)
#if PG_HAVE_AVXVNNI
PG_DEFINE_INT8_INT8(int8_rows_int8_avxvnni, PG_TARGET_AVXVNNI, PG_DOT8_AVXVNNI)
#endif

// AVX512-VNNI (vnni_rows in rows.h), 2 groups' 64 bytes at a time: the weights + 128 (xor 0x80) are vpdpbusd's
// unsigned operand, x its signed one, and each group's sums start from -128 * its x sum, so they come out exact.
//   SPLIT (fp32 x as int16): the high bytes' sums (XPrep::xh), times 256, then the low bytes' (xl), from c16n;
//   else (int8 x): xq, from c8.
template <bool SPLIT>
struct Int8Pair {
  static constexpr int kPer = 2;
  static constexpr bool kSym = true;
  static constexpr int kXEighths = (SPLIT ? 16 : 8) + 8 + 1;  // xh + xl or xq, c, xs
  const int8_t* xh;  // SPLIT: the high bytes; else xq
  const int8_t* xl;  // SPLIT: the low bytes
  const int32_t* c;
  const float* xs;   // [T, Gp] from row t0: xs16 or xs
  int64_t K, Gp, C;

  template <int TT>
  PG_TARGET_VNNI512 PG_INLINE void step(__m512 (&acc)[TT], const uint8_t* row, const __m512 (&d16)[TT],
                                        __m512i pick, int64_t g) const {
    const __m512i w = _mm512_xor_si512(_mm512_loadu_si512(row + g * kGroup), _mm512_set1_epi8(-128));
    for (int t = 0; t < TT; ++t) {
      const int64_t at = t * K + g * kGroup;
      __m512i s;
      if (SPLIT) {
        s = _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_loadu_si512(xh + at)), 8);
        s = _mm512_add_epi32(s, _mm512_loadu_si512(c + t * C + g * 8));
        s = _mm512_dpbusd_epi32(s, w, _mm512_loadu_si512(xl + at));
      } else {
        s = _mm512_dpbusd_epi32(_mm512_loadu_si512(c + t * C + g * 8), w, _mm512_loadu_si512(xh + at));
      }
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_permutexvar_ps(pick, d16[t]), acc[t]);
    }
  }

  // The last, odd group (if any).
  template <int TT>
  PG_TARGET_VNNI512 PG_INLINE void tail(__m256 (&out)[TT], const uint8_t* row, const QSeg& seg, int64_t n,
                                        int64_t g0, int64_t G) const {
    if (g0 >= G) return;
    const uint16_t* sc = seg.scales + n * G;
    const __m256i w = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + g0 * kGroup)),
                                       _mm256_set1_epi8(-128));
    for (int t = 0; t < TT; ++t) {
      const int64_t at = t * K + g0 * kGroup;
      const __m256i c0 = _mm256_zextsi128_si256(_mm_cvtsi32_si128(c[t * C + g0 * 8]));
      __m256i s;
      if (SPLIT) {
        s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xh + at)));
        s = _mm256_add_epi32(_mm256_slli_epi32(s, 8), c0);
        s = _mm256_dpbusd_epi32(s, w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xl + at)));
      } else {
        s = _mm256_dpbusd_epi32(c0, w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xh + at)));
      }
      out[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(_cvtsh_ss(sc[g0]) * xs[t * Gp + g0]), out[t]);
    }
  }
};

template <int TT>
PG_TARGET_VNNI512 void int8_rows_split(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  const XPrep& xp = *a.x;
  const int64_t C = c_stride(xp.G, 2);
  vnni_rows<TT>(a, blk, t0, n1, Int8Pair<true>{xp.xh + t0 * xp.K, xp.xl + t0 * xp.K, xp.c16n + t0 * C,
                                               xp.xs16 + t0 * xp.Gp, xp.K, xp.Gp, C});
}

template <int TT>
PG_TARGET_VNNI512 void int8_rows_int8_pair(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  const XPrep& xp = *a.x;
  const int64_t C = c_stride(xp.G, 2);
  vnni_rows<TT>(a, blk, t0, n1, Int8Pair<false>{xp.xq + t0 * xp.K, nullptr, xp.c8 + t0 * C,
                                                xp.xs + t0 * xp.Gp, xp.K, xp.Gp, C});
}

bool int8_reads_halves(const XPrep& xp) {
  return xp.x16p != nullptr || (xp.int8_x ? xp.c8 != nullptr : xp.c16n != nullptr);
}

void int8_rows_simd(int isa, const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1) {
  if (a.x->x16p) {  // either mode (see prepare_x16_avx2)
    PG_DISPATCH_T(int8_rows_x16_avx2, tn, a, blk, t0, n1)
    return;
  }
  if (int8_reads_halves(*a.x)) {
    if (a.x->int8_x) {
      PG_DISPATCH_T(int8_rows_int8_pair, tn, a, blk, t0, n1)
    } else {
      PG_DISPATCH_T(int8_rows_split, tn, a, blk, t0, n1)
    }
    return;
  }
  if (!a.x->int8_x) {
    if (isa == kAvx512) {
      PG_DISPATCH_T(int8_rows_avx512, tn, a, blk, t0, n1)
    } else {
      PG_DISPATCH_T(int8_rows_avx2, tn, a, blk, t0, n1)
    }
    return;
  }
  const int dot = isa == kAvx512 ? cpu().int8_dot : std::min(cpu().int8_dot, 1);
  // AVX512-VNNI (int8_dot 3) took Int8Pair above; AVX-VNNI without it comes here.
#if PG_HAVE_AVXVNNI
  if (dot == 2) {
    PG_DISPATCH_T(int8_rows_int8_avxvnni, tn, a, blk, t0, n1)
    return;
  }
#endif
  (void)dot;
  PG_DISPATCH_T(int8_rows_int8_avx2, tn, a, blk, t0, n1)
}

#endif  // PG_X86

}  // namespace pg
