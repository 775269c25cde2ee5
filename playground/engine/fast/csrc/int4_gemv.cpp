// Weight-only int4 GEMV/small-GEMM for CPU decode: out[T, N] = x[T, K] @ dequantize(w)[N, K]^T.
//
// Weight layout (see playground/engine/fast/int4_kernel.py):
//   qweight  uint8 [N, K/2]   per row, group-major: group g of row n is the 16 bytes at n*K/2 + 16*g,
//                             byte j holds q[32g + j] in its low nibble and q[32g + 16 + j] in its high one;
//   scales   fp16  [N, K/32]  w = q * scale + offset, q in 0..15;
//   offsets  fp16  [N, K/32]
//
// Two activation modes:
//   fp32 (default)  x stays fp32, so the result is x @ dequantize(w).T up to float rounding;
//   int8            x is quantized once per call per group of 32 to int8 (symmetric, scale max|x|/127, like
//                   llama.cpp's q8) and the q * x sums are integer dot products; the offset term uses the exact
//                   fp32 group sums of x. Less compute per weight at T=1 (more per extra row of x than fp32/avx512);
//                   error ~1e-2 of max|out| on random data (bf16 activations: ~4e-3).
//
// Code paths, chosen at run time (the file is compiled without -march flags: the SIMD functions carry target
// attributes, so the library loads on any x86-64; non-x86 builds get the scalar path only):
//   fp32/avx512  one group of one row = 16 bytes -> 16 dword lanes (vpmovzxbd); a 16-entry table q*scale+offset is
//                indexed by the low nibbles (vpermps reads an index's low 4 bits), then by the high ones (>> 4):
//                each weight is dequantized by one permute and FMA'd into fp32 accumulators;
//   fp32/avx2    nibbles -> int32 -> fp32 (vpmovzxbd, vcvtdq2ps); per group scale * sum(q x) + offset * sum(x);
//   int8/*       a group's 16 bytes, broadcast to both halves of a ymm, shifted by 0 / 4 and masked: 32 nibbles
//                as bytes in x's order; one vpdpbusd (AVX512-VNNI or AVX-VNNI), or vpmaddubsw + vpmaddwd (AVX2),
//                gives 8 int32 partial sums, converted and FMA'd with scale * x_scale;
//   scalar       the same sums in plain C++ (both modes).
// Each pass over a weight row serves up to 8 rows of x, so T <= 8 reads the weights once.
//
// Registered as the custom op playground::int4_gemv (its fake/meta implementation lives on the Python side).

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/clone.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PG_X86 1
#define PG_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define PG_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define PG_TARGET_VNNI512 __attribute__((target("avx512vnni,avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#if (defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11)
#define PG_HAVE_AVXVNNI 1
#define PG_TARGET_AVXVNNI __attribute__((target("avxvnni,avx2,fma,f16c")))
#else
#define PG_HAVE_AVXVNNI 0
#endif
#define PG_INLINE inline __attribute__((always_inline))
#else
#define PG_X86 0
#endif

namespace {

constexpr int64_t kGroup = 32;
constexpr int64_t kMaxT = 8;              // rows of x handled per pass over the weights
constexpr int64_t kRowBlock = 32;         // weight rows per block (kept hot in L1/L2 while T-chunks loop over it)
constexpr int64_t kPrefetchBytes = 4096;  // how far ahead of the current weight row to prefetch (none: ~40% slower)

struct Args {
  const float* x;            // [T, K]
  const uint8_t* qw;         // [N, K/2]
  const c10::Half* scales;   // [N, G]
  const c10::Half* offsets;  // [N, G]
  const float* sumx;         // [T, Gp] per-group sums of x (not used by fp32/avx512)
  const int8_t* xq;          // [T, K] int8 mode: quantized x
  const float* xs;           // [T, Gp] int8 mode: x scales
  float* out;                // [T, N]
  int64_t T, N, K, G;
  int64_t Gp;             // G rounded up to a multiple of 8: the row stride of the fp32 per-group arrays (zero pad)
  int64_t prefetch_rows;  // rows ahead to prefetch
};

// One block of rows: their scales and offsets in fp32 ([rows, G] each, then 8 zeros: the SIMD loops over a row's
// groups read up to Gp, the padded lanes being multiplied by the zero pad of sumx / xs), and int8-mode scratch.
struct Block {
  const float* sc;
  const float* of;
  float* scratch;  // [kMaxT, Gp]
  int64_t n0;
};

// ---------------------------------------------------------------- scalar path (any CPU) ---------------------------

void rows_scalar(const Args& a, const Block& blk, bool int8_x, int64_t t0, int64_t tn, int64_t n1) {
  const int64_t G = a.G, Gp = a.Gp, K = a.K;
  for (int64_t n = blk.n0; n < n1; ++n) {
    const uint8_t* row = a.qw + n * (K / 2);
    const float* sc = blk.sc + (n - blk.n0) * G;
    const float* of = blk.of + (n - blk.n0) * G;
    for (int64_t t = t0; t < t0 + tn; ++t) {
      const float* sx = a.sumx + t * Gp;
      float acc = 0.f;
      for (int64_t g = 0; g < G; ++g) {
        const uint8_t* b = row + g * 16;
        float d = 0.f;
        if (int8_x) {
          const int8_t* xg = a.xq + t * K + g * kGroup;
          int32_t s = 0;
          for (int j = 0; j < 16; ++j) s += (b[j] & 15) * xg[j] + (b[j] >> 4) * xg[j + 16];
          d = static_cast<float>(s) * a.xs[t * Gp + g];
        } else {
          const float* xg = a.x + t * K + g * kGroup;
          for (int j = 0; j < 16; ++j) {
            d += static_cast<float>(b[j] & 15) * xg[j] + static_cast<float>(b[j] >> 4) * xg[j + 16];
          }
        }
        acc += sc[g] * d + of[g] * sx[g];
      }
      a.out[t * a.N + n] = acc;
    }
  }
}

void half_to_float_scalar(const c10::Half* src, float* dst, int64_t count) {
  for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]);
}

// Per-group sums of x and, for the int8 mode, x quantized per group (round half to even, like torch.round).
void prepare_x_scalar(const float* x, int64_t groups, bool int8_x, float* sumx, int8_t* xq, float* xs) {
  for (int64_t i = 0; i < groups; ++i) {
    const float* xg = x + i * kGroup;
    float s = 0.f, amax = 0.f;
    for (int64_t j = 0; j < kGroup; ++j) {
      s += xg[j];
      amax = std::max(amax, std::fabs(xg[j]));
    }
    sumx[i] = s;
    if (int8_x) {
      const float inv = amax > 0.f ? 127.f / amax : 0.f;
      xs[i] = amax / 127.f;
      for (int64_t j = 0; j < kGroup; ++j) xq[i * kGroup + j] = static_cast<int8_t>(std::nearbyint(xg[j] * inv));
    }
  }
}

#if PG_X86

PG_INLINE void prefetch_row(const Args& a, int64_t n) {
  if (n >= a.N) return;
  const int64_t row_bytes = a.K / 2;
  const char* q = reinterpret_cast<const char*>(a.qw + n * row_bytes);
  for (int64_t off = 0; off < row_bytes; off += 64) _mm_prefetch(q + off, _MM_HINT_T0);
}

void prefetch_params(const Args& a, int64_t n0, int64_t n1) {
  if (n1 <= n0) return;
  const char* s = reinterpret_cast<const char*>(a.scales + n0 * a.G);
  const char* o = reinterpret_cast<const char*>(a.offsets + n0 * a.G);
  for (int64_t off = 0; off < (n1 - n0) * a.G * 2; off += 64) {
    _mm_prefetch(s + off, _MM_HINT_T0);
    _mm_prefetch(o + off, _MM_HINT_T0);
  }
}

PG_TARGET_AVX2 void half_to_float_avx2(const c10::Half* src, float* dst, int64_t count) {
  const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  }
  for (; i < count; ++i) dst[i] = _cvtsh_ss(s[i]);
}

PG_TARGET_AVX2 PG_INLINE float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

PG_TARGET_AVX2 PG_INLINE float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The lane sums of r[0..7] as one vector: [sum(r[0]), ..., sum(r[7])].
PG_TARGET_AVX2 PG_INLINE __m256 reduce8(const __m256* r) {
  const __m256 h01 = _mm256_hadd_ps(_mm256_hadd_ps(r[0], r[1]), _mm256_hadd_ps(r[2], r[3]));
  const __m256 h45 = _mm256_hadd_ps(_mm256_hadd_ps(r[4], r[5]), _mm256_hadd_ps(r[6], r[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(h01, h45, 0x20), _mm256_permute2f128_ps(h01, h45, 0x31));
}

// Rows finish into pending[t][i] (8 lanes still to be summed); every 8 rows one reduce8 per t writes 8 outputs.
template <int TT>
struct Pending {
  __m256 r[TT][8];
  int count = 0;
  int64_t first = 0;
};

template <int TT>
PG_TARGET_AVX2 PG_INLINE void flush(Pending<TT>& p, const Args& a, int64_t t0) {
  for (int t = 0; t < TT; ++t) {
    float* out = a.out + (t0 + t) * a.N + p.first;
    const __m256 v = reduce8(p.r[t]);
    if (p.count == 8) {
      _mm256_storeu_ps(out, v);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, v);
      for (int i = 0; i < p.count; ++i) out[i] = tmp[i];
    }
  }
  p.first += p.count;
  p.count = 0;
}

// acc + a[i] * b[i] over i < n (a multiple of 8), lane-wise
PG_TARGET_AVX2 PG_INLINE __m256 dot8(__m256 acc, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  return acc;
}

PG_TARGET_AVX2 void prepare_x_avx2(const float* x, int64_t groups, bool int8_x, float* sumx, int8_t* xq, float* xs) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i = 0; i < groups; ++i) {
    const float* xg = x + i * kGroup;
    const __m256 v0 = _mm256_loadu_ps(xg), v1 = _mm256_loadu_ps(xg + 8);
    const __m256 v2 = _mm256_loadu_ps(xg + 16), v3 = _mm256_loadu_ps(xg + 24);
    // Sequential-enough sum; any order is fine (it is not compared bit for bit).
    sumx[i] = hsum(_mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3)));
    if (!int8_x) continue;
    const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, abs_mask), _mm256_and_ps(v1, abs_mask)),
                                   _mm256_max_ps(_mm256_and_ps(v2, abs_mask), _mm256_and_ps(v3, abs_mask)));
    const float amax = hmax(m);
    const float inv = amax > 0.f ? 127.f / amax : 0.f;
    xs[i] = amax / 127.f;
    const __m256 vi = _mm256_set1_ps(inv);
    // vcvtps2dq rounds half to even (the default MXCSR mode), like torch.round.
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vi)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vi));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vi)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vi));
    const __m256i w01 = _mm256_packs_epi32(i0, i1), w23 = _mm256_packs_epi32(i2, i3);
    const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(xq + i * kGroup), b);
  }
}

// ---------------------------------------------------------------- fp32 x, AVX2 + FMA ------------------------------

template <int TT>
PG_TARGET_AVX2 void rows_avx2(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  const __m256i mask = _mm256_set1_epi32(15);
  const int64_t G = a.G, Gp = a.Gp, K = a.K;
  const float* x = a.x + t0 * K;
  Pending<TT> pending;
  pending.first = blk.n0;
  for (int64_t n = blk.n0; n < n1; ++n) {
    prefetch_row(a, n + a.prefetch_rows);
    const float* sc = blk.sc + (n - blk.n0) * G;
    const float* of = blk.of + (n - blk.n0) * G;
    const uint8_t* row = a.qw + n * (K / 2);
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
      pending.r[t][pending.count] = _mm256_add_ps(acc[t], dot8(_mm256_setzero_ps(), of, a.sumx + (t0 + t) * Gp, Gp));
    }
    if (++pending.count == 8) flush(pending, a, t0);
  }
  if (pending.count) flush(pending, a, t0);
}

// ---------------------------------------------------------------- fp32 x, AVX-512 ---------------------------------

// One group of one row into the accumulators of TT rows of x.
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
PG_TARGET_AVX512 void rows_avx512(const Args& a, const Block& blk, int64_t t0, int64_t n1) {
  constexpr int U = TT <= 2 ? 2 : 1;  // groups in flight per step, so small T has enough independent FMA chains
  const int64_t G = a.G, K = a.K;
  const float* x = a.x + t0 * K;
  Pending<TT> pending;
  pending.first = blk.n0;
  for (int64_t n = blk.n0; n < n1; ++n) {
    prefetch_row(a, n + a.prefetch_rows);
    const float* sc = blk.sc + (n - blk.n0) * G;
    const float* of = blk.of + (n - blk.n0) * G;
    const uint8_t* row = a.qw + n * (K / 2);
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
#define PG_INT8_GROUP(DOT, U, g)                                                                                   \
  {                                                                                                                \
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + (g) * 16));                           \
    const __m256i w = _mm256_and_si256(_mm256_srlv_epi64(_mm256_broadcastsi128_si256(b), shift), low4);            \
    for (int t = 0; t < TT; ++t) {                                                                                 \
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + t * K + (g) * kGroup));          \
      const __m256i p = DOT(w, xv);                                                                                \
      acc[t][U] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_broadcast_ss(d + t * Gp + (g)), acc[t][U]);        \
    }                                                                                                              \
  }

#define PG_DEFINE_ROWS_INT8(NAME, TARGET, DOT)                                                                     \
  template <int TT>                                                                                                \
  TARGET void NAME(const Args& a, const Block& blk, int64_t t0, int64_t n1) {                                      \
    const __m256i shift = _mm256_setr_epi64x(0, 0, 4, 4);                                                         \
    const __m256i low4 = _mm256_set1_epi8(15);                                                                     \
    const int64_t G = a.G, Gp = a.Gp, K = a.K;                                                                     \
    const int8_t* xq = a.xq + t0 * K;                                                                              \
    float* d = blk.scratch; /* [TT, Gp]: scale * x_scale */                                                        \
    Pending<TT> pending;                                                                                           \
    pending.first = blk.n0;                                                                                        \
    for (int64_t n = blk.n0; n < n1; ++n) {                                                                        \
      prefetch_row(a, n + a.prefetch_rows);                                                                        \
      const float* sc = blk.sc + (n - blk.n0) * G;                                                                 \
      const float* of = blk.of + (n - blk.n0) * G;                                                                 \
      const uint8_t* row = a.qw + n * (K / 2);                                                                     \
      for (int t = 0; t < TT; ++t) {                                                                               \
        const float* xs = a.xs + (t0 + t) * Gp;                                                                    \
        for (int64_t g = 0; g < Gp; g += 8)                                                                        \
          _mm256_storeu_ps(d + t * Gp + g, _mm256_mul_ps(_mm256_loadu_ps(sc + g), _mm256_loadu_ps(xs + g)));      \
      }                                                                                                            \
      __m256 acc[TT][2];                                                                                           \
      for (int t = 0; t < TT; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();                                    \
      int64_t g = 0;                                                                                               \
      for (; g + 2 <= G; g += 2) {                                                                                 \
        PG_INT8_GROUP(DOT, 0, g)                                                                                   \
        PG_INT8_GROUP(DOT, 1, g + 1)                                                                               \
      }                                                                                                            \
      if (g < G) {                                                                                                 \
        PG_INT8_GROUP(DOT, 0, g)                                                                                   \
      }                                                                                                            \
      for (int t = 0; t < TT; ++t)                                                                                 \
        pending.r[t][pending.count] = _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]),                            \
                                                  dot8(_mm256_setzero_ps(), of, a.sumx + (t0 + t) * Gp, Gp));      \
      if (++pending.count == 8) flush(pending, a, t0);                                                             \
    }                                                                                                              \
    if (pending.count) flush(pending, a, t0);                                                                      \
  }

PG_DEFINE_ROWS_INT8(rows_int8_avx2, PG_TARGET_AVX2, PG_DOT_AVX2)
PG_DEFINE_ROWS_INT8(rows_int8_vnni512, PG_TARGET_VNNI512, PG_DOT_VNNI512)
#if PG_HAVE_AVXVNNI
PG_DEFINE_ROWS_INT8(rows_int8_avxvnni, PG_TARGET_AVXVNNI, PG_DOT_AVXVNNI)
#endif

// ---------------------------------------------------------------- dispatch ----------------------------------------

#define PG_DISPATCH_T(FN, tn, ...)           \
  switch (tn) {                              \
    case 1: FN<1>(__VA_ARGS__); break;       \
    case 2: FN<2>(__VA_ARGS__); break;       \
    case 3: FN<3>(__VA_ARGS__); break;       \
    case 4: FN<4>(__VA_ARGS__); break;       \
    case 5: FN<5>(__VA_ARGS__); break;       \
    case 6: FN<6>(__VA_ARGS__); break;       \
    case 7: FN<7>(__VA_ARGS__); break;       \
    default: FN<8>(__VA_ARGS__); break;      \
  }

enum Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
enum Int8Dot { kDotScalar = 0, kDotAvx2 = 1, kDotAvxVnni = 2, kDotVnni512 = 3 };

struct Cpu {
  int isa = kScalar;
  int int8_dot = kDotScalar;
};

const Cpu& cpu() {
  static const Cpu c = [] {
    Cpu r;
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");  // F16C comes with these
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl");
    r.isa = avx512 ? kAvx512 : avx2 ? kAvx2 : kScalar;
    r.int8_dot = avx2 ? kDotAvx2 : kDotScalar;
#if PG_HAVE_AVXVNNI
    if (avx2 && __builtin_cpu_supports("avxvnni")) r.int8_dot = kDotAvxVnni;
#endif
    if (avx512 && __builtin_cpu_supports("avx512vnni")) r.int8_dot = kDotVnni512;
    return r;
  }();
  return c;
}

int cpu_isa() { return cpu().isa; }

void half_to_float(int isa, const c10::Half* src, float* dst, int64_t count) {
  if (isa >= kAvx2) {
    half_to_float_avx2(src, dst, count);
  } else {
    half_to_float_scalar(src, dst, count);
  }
}

void prepare_x(int isa, const float* x, int64_t groups, bool int8_x, float* sumx, int8_t* xq, float* xs) {
  if (isa >= kAvx2) {
    prepare_x_avx2(x, groups, int8_x, sumx, xq, xs);
  } else {
    prepare_x_scalar(x, groups, int8_x, sumx, xq, xs);
  }
}

void run_rows(int isa, bool int8_x, const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1) {
  if (isa == kScalar) {
    rows_scalar(a, blk, int8_x, t0, tn, n1);
  } else if (!int8_x) {
    if (isa == kAvx512) {
      PG_DISPATCH_T(rows_avx512, tn, a, blk, t0, n1)
    } else {
      PG_DISPATCH_T(rows_avx2, tn, a, blk, t0, n1)
    }
  } else {
    const int dot = isa == kAvx512 ? cpu().int8_dot : std::min<int>(cpu().int8_dot, kDotAvx2);
    if (dot == kDotVnni512) {
      PG_DISPATCH_T(rows_int8_vnni512, tn, a, blk, t0, n1)
#if PG_HAVE_AVXVNNI
    } else if (dot == kDotAvxVnni) {
      PG_DISPATCH_T(rows_int8_avxvnni, tn, a, blk, t0, n1)
#endif
    } else {
      PG_DISPATCH_T(rows_int8_avx2, tn, a, blk, t0, n1)
    }
  }
}

const char* int8_dot_name(int isa) {
  if (isa == kScalar) return "scalar";
  const int dot = isa == kAvx512 ? cpu().int8_dot : std::min<int>(cpu().int8_dot, kDotAvx2);
  return dot == kDotVnni512 ? "avx512-vnni" : dot == kDotAvxVnni ? "avx-vnni" : "avx2";
}

#else  // not x86-64 with GCC/Clang: scalar only

enum Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
int cpu_isa() { return kScalar; }
void half_to_float(int, const c10::Half* src, float* dst, int64_t count) { half_to_float_scalar(src, dst, count); }
void prefetch_params(const Args&, int64_t, int64_t) {}
void prepare_x(int, const float* x, int64_t groups, bool int8_x, float* sumx, int8_t* xq, float* xs) {
  prepare_x_scalar(x, groups, int8_x, sumx, xq, xs);
}
void run_rows(int, bool int8_x, const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1) {
  rows_scalar(a, blk, int8_x, t0, tn, n1);
}
const char* int8_dot_name(int) { return "scalar"; }

#endif

const char* const kIsaNames[] = {"scalar", "avx2", "avx512"};
std::atomic<int> g_isa_cap{kAvx512};  // the widest path allowed (tests and benches lower it)

int active_isa() { return std::min(cpu_isa(), g_isa_cap.load(std::memory_order_relaxed)); }

// ---------------------------------------------------------------- op ----------------------------------------------

at::Tensor int4_gemv(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& scales,
                     const at::Tensor& offsets, bool int8_x) {
  TORCH_CHECK(x.device().is_cpu() && qweight.device().is_cpu() && scales.device().is_cpu() &&
                  offsets.device().is_cpu(),
              "int4_gemv: CPU tensors only");
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "int4_gemv: x must be float32 [T, K]");
  TORCH_CHECK(qweight.dim() == 2 && qweight.scalar_type() == at::kByte, "int4_gemv: qweight must be uint8 [N, K/2]");
  const int64_t T = x.size(0), K = x.size(1), N = qweight.size(0);
  TORCH_CHECK(K % kGroup == 0, "int4_gemv: K must be a multiple of 32, got ", K);
  TORCH_CHECK(qweight.size(1) * 2 == K, "int4_gemv: x has K=", K, " but qweight holds ", qweight.size(1) * 2);
  const int64_t G = K / kGroup;
  TORCH_CHECK(scales.scalar_type() == at::kHalf && offsets.scalar_type() == at::kHalf && scales.dim() == 2 &&
                  offsets.dim() == 2 && scales.size(0) == N && scales.size(1) == G && offsets.size(0) == N &&
                  offsets.size(1) == G,
              "int4_gemv: scales/offsets must be float16 [N, K/32]");

  const at::Tensor xc = x.contiguous(), qc = qweight.contiguous(), sc = scales.contiguous(),
                   oc = offsets.contiguous();
  at::Tensor out = at::empty({T, N}, x.options());
  if (T == 0 || N == 0) return out;

  const int isa = active_isa();
  const float* xp = xc.data_ptr<float>();
  const int64_t Gp = (G + 7) / 8 * 8;
  // Small per-call buffers: group sums of x [T, Gp], and for the int8 mode x quantized [T, K] and its scales [T, Gp].
  std::vector<float> sumx(static_cast<size_t>(T * Gp), 0.f), xs(int8_x ? static_cast<size_t>(T * Gp) : 0, 0.f);
  std::vector<int8_t> xq(int8_x ? static_cast<size_t>(T * K) : 0);
  for (int64_t t = 0; t < T; ++t) {
    prepare_x(isa, xp + t * K, G, int8_x, sumx.data() + t * Gp, int8_x ? xq.data() + t * K : nullptr,
              int8_x ? xs.data() + t * Gp : nullptr);
  }

  Args a{xp, qc.data_ptr<uint8_t>(), sc.data_ptr<c10::Half>(), oc.data_ptr<c10::Half>(), sumx.data(), xq.data(),
         xs.data(), out.data_ptr<float>(), T, N, K, G, Gp, std::max<int64_t>(1, kPrefetchBytes / (K / 2))};
  // Enough rows per task that a thread hand-off (a few microseconds) stays small next to the work.
  const int64_t work_per_row = K * std::min<int64_t>(T, kMaxT);
  const int64_t grain = std::max<int64_t>(16, (int64_t{1} << 16) / work_per_row);
  at::parallel_for(0, N, grain, [&](int64_t begin, int64_t end) {
    // fp32 scales and offsets of one block of rows, and the int8 mode's scratch.
    const int64_t params = kRowBlock * G + 8;
    std::vector<float> buf(static_cast<size_t>(2 * params + kMaxT * Gp), 0.f);
    float* bsc = buf.data();
    float* bof = bsc + params;
    for (int64_t n0 = begin; n0 < end; n0 += kRowBlock) {
      const int64_t n1 = std::min(end, n0 + kRowBlock);
      prefetch_params(a, n1, std::min(end, n1 + kRowBlock));  // the next block's
      half_to_float(isa, a.scales + n0 * G, bsc, (n1 - n0) * G);
      half_to_float(isa, a.offsets + n0 * G, bof, (n1 - n0) * G);
      const Block blk{bsc, bof, bof + params, n0};
      for (int64_t t0 = 0; t0 < T; t0 += kMaxT) {
        run_rows(isa, int8_x, a, blk, t0, std::min(kMaxT, T - t0), n1);
      }
    }
  });
  return out;
}

// Which code paths int4_gemv takes: "<fp32 path> <int8 path> <threads>", e.g. "avx512 avx512-vnni openmp"
// ("single-thread" when built without OpenMP: at::parallel_for is header code that needs -fopenmp).
std::string int4_gemv_isa() {
  const int isa = active_isa();
#ifdef _OPENMP
  const char* threads = "openmp";
#else
  const char* threads = "single-thread";
#endif
  return std::string(kIsaNames[isa]) + " " + int8_dot_name(isa) + " " + threads;
}

// Caps the code path at isa ("avx512", "avx2", "scalar"; for tests and benches); returns the paths now taken.
std::string int4_gemv_set_isa(const std::string& isa) {
  int cap = -1;
  for (int i = 0; i < 3; ++i)
    if (isa == kIsaNames[i]) cap = i;
  TORCH_CHECK(cap >= 0, "int4_gemv_set_isa: unknown isa '", isa, "' (avx512, avx2 or scalar)");
  g_isa_cap.store(cap);
  return int4_gemv_isa();
}

// One decode step of a Llama-shaped model's layers with int4 weights (the fast path's default): the arithmetic of
// FastLlama._forward for one token, with everything between the matmuls (RMSNorm, RoPE, the KV write, attention,
// SiLU, residuals) as plain loops. Through ATen those small ops cost more than the matmuls (dispatch and a thread
// hand-off each, tens of microseconds, ~20 per layer). Writes this position's keys/values into the caches.
//   x [1, D]; cos/sin_signed [hd] (sin with its first half negated); k_cache/v_cache [layers, kv, capacity, hd];
//   norms: per layer (input norm, post-attention norm); weights: per layer qkv, o, gate_up, down, each as
//   (qweight, scales, offsets). Returns x after the last layer (the final norm and head stay in Python).
void rms_norm_into(const float* x, const float* w, float* out, int64_t n, double eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * r * w[i];
}

void rope_in_place(float* v, const float* cos, const float* sin_signed, int64_t hd) {
  const int64_t half = hd / 2;
  for (int64_t j = 0; j < half; ++j) {
    const float a = v[j], b = v[j + half];
    v[j] = a * cos[j] + b * sin_signed[j];
    v[j + half] = b * cos[j + half] + a * sin_signed[j + half];
  }
}

at::Tensor llama_decode_layers(const at::Tensor& x_in, int64_t pos, const at::Tensor& cos_t,
                               const at::Tensor& sin_t, const at::Tensor& k_cache, const at::Tensor& v_cache,
                               at::TensorList norms, at::TensorList weights, int64_t n_heads, int64_t n_kv,
                               double eps, bool int8_x) {
  const int64_t layers = k_cache.size(0), cap = k_cache.size(2), hd = k_cache.size(3), D = x_in.size(1);
  TORCH_CHECK(x_in.dim() == 2 && x_in.size(0) == 1 && x_in.scalar_type() == at::kFloat,
              "llama_decode_layers: x must be float32 [1, D]");
  TORCH_CHECK(k_cache.is_contiguous() && v_cache.is_contiguous() && k_cache.scalar_type() == at::kFloat &&
                  v_cache.scalar_type() == at::kFloat && k_cache.size(1) == n_kv,
              "llama_decode_layers: caches must be contiguous float32 [layers, kv, capacity, hd]");
  TORCH_CHECK(static_cast<int64_t>(norms.size()) == 2 * layers && static_cast<int64_t>(weights.size()) == 12 * layers,
              "llama_decode_layers: expected 2 norms and 12 weight tensors per layer");
  TORCH_CHECK(pos >= 0 && pos < cap, "llama_decode_layers: position outside the cache");
  TORCH_CHECK(n_kv > 0 && n_heads % n_kv == 0 && hd % 2 == 0, "llama_decode_layers: bad head counts");
  const at::Tensor cs = cos_t.contiguous().to(at::kFloat), sn = sin_t.contiguous().to(at::kFloat);
  TORCH_CHECK(cs.numel() == hd && sn.numel() == hd, "llama_decode_layers: cos/sin must hold head_dim values");
  const float* cosp = cs.data_ptr<float>();
  const float* sinp = sn.data_ptr<float>();
  const int64_t q_width = n_heads * hd, kv_width = n_kv * hd, group = n_heads / n_kv, len = pos + 1;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  at::Tensor x = x_in.contiguous().clone();
  at::Tensor h = at::empty({1, D}, x.options());
  at::Tensor attn = at::empty({1, q_width}, x.options());
  float* xp = x.data_ptr<float>();
  float* hp = h.data_ptr<float>();
  float* ap = attn.data_ptr<float>();
  for (int64_t i = 0; i < layers; ++i) {
    const at::Tensor* w = &weights[12 * i];
    rms_norm_into(xp, norms[2 * i].data_ptr<float>(), hp, D, eps);
    at::Tensor qkv = int4_gemv(h, w[0], w[1], w[2], int8_x);
    float* qkvp = qkv.data_ptr<float>();
    for (int64_t head = 0; head < n_heads + n_kv; ++head) rope_in_place(qkvp + head * hd, cosp, sinp, hd);
    float* kbase = k_cache.data_ptr<float>() + i * n_kv * cap * hd;
    float* vbase = v_cache.data_ptr<float>() + i * n_kv * cap * hd;
    for (int64_t g = 0; g < n_kv; ++g) {
      std::copy_n(qkvp + q_width + g * hd, hd, kbase + (g * cap + pos) * hd);
      std::copy_n(qkvp + q_width + kv_width + g * hd, hd, vbase + (g * cap + pos) * hd);
    }
    // Attention, one query head per task; GQA by indexing the shared kv head.
    const int64_t grain = len * hd > (1 << 14) ? 1 : n_heads;
    at::parallel_for(0, n_heads, grain, [&](int64_t begin, int64_t end) {
      std::vector<float> scores(static_cast<size_t>(len));
      for (int64_t head = begin; head < end; ++head) {
        const float* q = qkvp + head * hd;
        const float* keys = kbase + (head / group) * cap * hd;
        const float* values = vbase + (head / group) * cap * hd;
        float top = -INFINITY;
        for (int64_t t = 0; t < len; ++t) {
          float dot = 0.f;
          for (int64_t d = 0; d < hd; ++d) dot += q[d] * keys[t * hd + d];
          scores[t] = dot * scale;
          top = std::max(top, scores[t]);
        }
        float total = 0.f;
        for (int64_t t = 0; t < len; ++t) total += (scores[t] = std::exp(scores[t] - top));
        float* out = ap + head * hd;
        std::fill_n(out, hd, 0.f);
        for (int64_t t = 0; t < len; ++t) {
          const float p = scores[t] / total;
          for (int64_t d = 0; d < hd; ++d) out[d] += p * values[t * hd + d];
        }
      }
    });
    const at::Tensor o = int4_gemv(attn, w[3], w[4], w[5], int8_x);
    const float* op = o.data_ptr<float>();
    for (int64_t d = 0; d < D; ++d) xp[d] += op[d];
    rms_norm_into(xp, norms[2 * i + 1].data_ptr<float>(), hp, D, eps);
    at::Tensor gu = int4_gemv(h, w[6], w[7], w[8], int8_x);
    const int64_t inter = gu.size(1) / 2;
    float* gp = gu.data_ptr<float>();
    for (int64_t j = 0; j < inter; ++j) gp[j] = gp[j] / (1.f + std::exp(-gp[j])) * gp[inter + j];
    const at::Tensor down = int4_gemv(gu.narrow(1, 0, inter), w[9], w[10], w[11], int8_x);
    const float* dp = down.data_ptr<float>();
    for (int64_t d = 0; d < D; ++d) xp[d] += dp[d];
  }
  return x;
}

}  // namespace

// A fragment, so other playground::* ops can live in other libraries.
TORCH_LIBRARY_FRAGMENT(playground, m) {
  m.def("int4_gemv(Tensor x, Tensor qweight, Tensor scales, Tensor offsets, bool int8_x=False) -> Tensor");
  m.def("int4_gemv_isa() -> str", &int4_gemv_isa);
  m.def("int4_gemv_set_isa(str isa) -> str", &int4_gemv_set_isa);
  m.def("llama_decode_layers(Tensor x, int pos, Tensor cos, Tensor sin, Tensor(a!) k_cache, Tensor(b!) v_cache, "
        "Tensor[] norms, Tensor[] weights, int n_heads, int n_kv, float eps, bool int8_x) -> Tensor");
}

TORCH_LIBRARY_IMPL(playground, CPU, m) {
  m.impl("int4_gemv", &int4_gemv);
  m.impl("llama_decode_layers", &llama_decode_layers);
}
