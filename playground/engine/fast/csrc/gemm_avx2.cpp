// Prefill's GEMM on the AVX2 path: quantized weights times x rounded per group of 32, in integers.
//
// MKL's fp32 sgemm on dequantized tiles ran at ~60% of the cores' FMA peak and was ~80% of a prefill. Here
// vpmaddubsw multiplies 32 unsigned 4-bit weights by 32 signed bytes of x and adds neighbours into 16 int16 lanes,
// and the eight of a group of 32 are summed in int16 before one vpmaddwd widens them: |sum| <= 8 * 2 * 15 * 128 =
// 30720 < 32767, so nothing saturates. Two vector operations per 32 products, where fp32 takes four FMAs.
// - int4 weights, either mode: x rounded to int8 (xq, xs; llama.cpp's q8 scheme): 2.0-2.3x MKL's sgemm on a
//   2-core Zen 3 (bench/prefill_gemm.py). The fp32 mode took x as int16 split into two bytes until the offsets met
//   x as rounded (kernels.h): twice the multiplies (1.3-1.4x MKL's sgemm), to avoid a +1.0-1.2% perplexity that
//   int8 x turned out not to cost (bench/prefill_quality.py: -0.00% since). int5 weights the same way, their
//   panels holding 0..31, the int16 sums widened every half group.
// - int6 weights (Q6_K kept at six bits: 0..63, a scale per half group), either mode: the same bytes against x as
//   int8, each two steps' int16 sums widened at once (|sum| <= 2 * 2 * 63 * 127 = 32004), each half group's int32
//   sums started at -32 times x's sum over its 16 values (as rounded) and scaled by its own scale, as on
//   AVX512-VNNI. They had met x16 through vpmaddwd, 16 products per multiply: 0.5x int4's speed per product, ~20%
//   of a Llama-3.2-1B Q4_K_M or Q5_K_M prefill (half its down projections are Q6_K).
// - int8 weights (GGUF's Q8_0, and Q5 where held as int8), fp32 mode: widened to int16 and multiplied by x16 as is
//   with vpmaddwd, 16 products per multiply (1.0-1.4x MKL's sgemm; Gemma-3-270M's Q4_K_M file is three quarters
//   such weights). The int8 mode leaves them to MKL.
//
// Weights are repacked per block of rows into panels of 8 rows: per group, 8 steps of [8 rows x 4 consecutive
// k] bytes (int8: 16 steps of 2 k widened to int16), so one 32-byte load meets a broadcast of 4 bytes of an x row
// and each int32 lane ends up holding one row's sum. Each group's sum is then scaled in fp32: scale * x scale, plus
// the offset times x's group sum as rounded (the int8 mode's rule, offset_sums in kernels.h; it says why).
#include <algorithm>
#include <cstring>

#include "gemm_pack.h"
#include "kernels.h"
#include "rows.h"
#include "simd.h"

namespace pg {

namespace {

constexpr int64_t kPanel = 8;  // rows per panel (one int32 lane each)
constexpr int64_t kMaxRows = 4;  // rows of x per kernel call

// One group of a panel: int4, int5 and int6, 8 steps x 32 bytes (4 k of 8 rows, a byte each); int8, 16 steps x 32
// bytes (2 k of 8 rows, widened to int16).
bool byte_panels(int kind) { return nibble_kind(kind) || kind == kInt6; }
int64_t group_bytes(int kind) { return byte_panels(kind) ? 8 * 32 : 16 * 32; }

// Bytes of one panel: the repacked weights, then fp32 scales [G][8] and (int4) offsets [G][8]; int6: scales
// [G][2][8], one per half group.
int64_t panel_bytes(int kind, int64_t G) { return G * (group_bytes(kind) + (kind == kInt8 ? 1 : 2) * kPanel * 4); }

}  // namespace

int64_t gemm_block_rows(int64_t K) {
  // ~128 KiB of int4 panels per block (they stay in L2 while every row of x passes over them), whole pairs of
  // panels.
  const int64_t rows = (int64_t{1} << 17) / std::max<int64_t>(K, 1) / 16 * 16;
  return std::clamp<int64_t>(rows, 16, 256);
}

int64_t gemm_scratch_bytes(int64_t K) { return gemm_block_rows(K) / kPanel * panel_bytes(kInt8, K / kGroup); }

#if PG_X86

// fp32 mode, int8 weights: per row, per group of 32, x16 = round(x * 32639 / max|x|) (x16 [T, K]) and xs16. No
// group sums: those weights have no offsets.
PG_TARGET_AVX2 void prepare_gemm_x16(XPrep& p) {
  for (int64_t t = 0; t < p.T; ++t) {
    for (int64_t i = 0; i < p.G; ++i) {
      const float* xg = p.x + t * p.K + i * kGroup;
      __m256 v[4];
      for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(xg + 8 * j);
      const RoundedGroup r = round_group(v, kInt16Levels);  // as the AVX2 decode rounds x
      const __m256i* q = r.q;
      p.xs16[t * p.Gp + i] = r.scale;
      int16_t* plain = p.x16 + t * p.K + i * kGroup;
      for (int j = 0; j < 4; j += 2) {
        const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[j], q[j + 1]), 0xD8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(plain + 8 * j), w);
      }
    }
  }
}

namespace {

// Rows [r0, r0 + 8) of s (rows at or past N: zeros) as one panel at dst. int4, int5, int6: a step is 4 k (a byte
// each); int8: 2 k widened to int16. Either way a step holds 4 bytes of each row, so both transpose 4-byte chunks.
PG_TARGET_AVX2 void pack_panel(const QSeg& s, int64_t r0, uint8_t* dst) {
  const int64_t G = s.K / kGroup, rb = row_bytes(s), gb = group_bytes(s.kind);
  const bool bytes = byte_panels(s.kind), int6 = s.kind == kInt6;
  float* ws = reinterpret_cast<float*>(dst + G * gb);
  float* off = ws + G * kPanel;
  for (int64_t g = 0; g < G; ++g) {
    __m256i* out = reinterpret_cast<__m256i*>(dst + g * gb);
    // int4, int5, int6: per row, q[0..15] (steps 0-3), then q[16..31] (steps 4-7). int8: 4 chunks of 8 values
    // (steps 4c..4c+3).
    for (int c = 0; c < 4; ++c) {
      if (bytes && c == 2) break;
      __m128i h[kPanel];
      for (int64_t r = 0; r < kPanel; ++r) {
        if (r0 + r >= s.N) {
          h[r] = _mm_setzero_si128();
        } else if (int6) {
          h[r] = int6_bytes(s, r0 + r, g, c);
        } else if (bytes) {
          h[r] = nibble_chunk(s, r0 + r, g, c);
        } else {
          h[r] = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s.q + (r0 + r) * rb +
                                                                                    g * kGroup + 8 * c)));
        }
      }
      transpose_8x4(h, out + 4 * c, 1);
    }
    for (int64_t r = 0; r < kPanel && int6; ++r) {  // the halves' scales
      for (int64_t h = 0; h < 2; ++h) ws[(2 * g + h) * kPanel + r] = int6_half_scale(s, r0 + r, g, h);
    }
    for (int64_t r = 0; r < kPanel && !int6; ++r) {  // int4, int5: scales and offsets; int8: scales
      const GroupParams p = group_params(s, r0 + r, g);
      ws[g * kPanel + r] = p.scale;
      if (bytes) off[g * kPanel + r] = p.offset;
    }
  }
}

constexpr int64_t kInt4Group = 8 * 32;  // group_bytes(kInt4)

// acc[i] += (s0[i] | s1[i]) * scale * x's scale for rows i of one group's (or half group's) int32 sums; xs[i * stride]:
// row i's x scale.
template <int TR>
PG_TARGET_AVX2 PG_INLINE void add_scaled(float (*acc)[2 * kPanel], const __m256i* s0, const __m256i* s1, __m256 sc0,
                                         __m256 sc1, const float* xs, int64_t stride) {
  for (int i = 0; i < TR; ++i) {
    const __m256 x = _mm256_set1_ps(xs[i * stride]);
    _mm256_store_ps(acc[i], _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0[i]), _mm256_mul_ps(sc0, x), _mm256_load_ps(acc[i])));
    _mm256_store_ps(acc[i] + kPanel, _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1[i]), _mm256_mul_ps(sc1, x),
                                                     _mm256_load_ps(acc[i] + kPanel)));
  }
}

// The TR rows of acc (two panels' columns each) into c, row stride ldc.
template <int TR>
PG_TARGET_AVX2 PG_INLINE void store_rows(const float (*acc)[2 * kPanel], float* c, int64_t ldc) {
  for (int i = 0; i < TR; ++i) {
    _mm256_storeu_ps(c + i * ldc, _mm256_load_ps(acc[i]));
    _mm256_storeu_ps(c + i * ldc + kPanel, _mm256_load_ps(acc[i] + kPanel));
  }
}

// c[i][0..15] = rows t..t+TR of x (xq: int8) times the two panels at p0 and p1 (each panel_bytes(G) long). The int16
// sums stay in registers through a group: without the empty asm GCC reordered the additions, kept all of a group's
// products on the stack and ran at half the speed. The fp32 sums live in acc (memory, touched once a group).
// FIVE (int5 weights, 0..31): the int16 sums are widened every 4 steps (|sum| <= 4 * 2 * 31 * 128 = 31744).
template <int TR, bool FIVE>
PG_TARGET_AVX2 void kernel(const uint8_t* p0, const uint8_t* p1, const XPrep& xp, int64_t t, float* c, int64_t ldc) {
  const int64_t G = xp.G, ldx = xp.K;
  const float* sums = offset_sums(xp);  // the int8 mode's: x as rounded
  const float* ws0 = reinterpret_cast<const float*>(p0 + G * kInt4Group);
  const float* ws1 = reinterpret_cast<const float*>(p1 + G * kInt4Group);
  const float *off0 = ws0 + G * kPanel, *off1 = ws1 + G * kPanel;
  const int8_t* x = xp.xq + t * ldx;
  const __m256i ones = _mm256_set1_epi16(1);
  alignas(32) float acc[TR][2 * kPanel] = {};
  for (int64_t g = 0; g < G; ++g) {
    __m256i h0[TR], h1[TR], i0[TR], i1[TR];
    for (int i = 0; i < TR; ++i) h0[i] = h1[i] = i0[i] = i1[i] = _mm256_setzero_si256();
    const __m256i* w0 = reinterpret_cast<const __m256i*>(p0 + g * kInt4Group);
    const __m256i* w1 = reinterpret_cast<const __m256i*>(p1 + g * kInt4Group);
    const int8_t* xg = x + g * kGroup;
    // int5: two runs of 4 steps, each widened after it (a run-time test of the step inside one loop of 8 kept
    // GCC from unrolling it: int5's GEMM ran at 0.64x int4's per product)
    constexpr int kRun = FIVE ? 4 : 8;
#pragma GCC unroll 2
    for (int run = 0; run < 8; run += kRun) {
#pragma GCC unroll 8
      for (int st = run; st < run + kRun; ++st) {
        const __m256i a = _mm256_loadu_si256(w0 + st), b = _mm256_loadu_si256(w1 + st);
        for (int i = 0; i < TR; ++i) {
          const __m256i xb = four_bytes(xg + i * ldx + st * 4);
          h0[i] = _mm256_add_epi16(h0[i], _mm256_maddubs_epi16(a, xb));
          h1[i] = _mm256_add_epi16(h1[i], _mm256_maddubs_epi16(b, xb));
          __asm__("" : "+x"(h0[i]), "+x"(h1[i]));
        }
      }
      for (int i = 0; i < TR; ++i) {
        const __m256i m0 = _mm256_madd_epi16(h0[i], ones), m1 = _mm256_madd_epi16(h1[i], ones);
        i0[i] = FIVE ? _mm256_add_epi32(i0[i], m0) : m0;
        i1[i] = FIVE ? _mm256_add_epi32(i1[i], m1) : m1;
        h0[i] = h1[i] = _mm256_setzero_si256();
      }
    }
    const __m256 sc0 = _mm256_loadu_ps(ws0 + g * kPanel), sc1 = _mm256_loadu_ps(ws1 + g * kPanel);
    const __m256 o0 = _mm256_loadu_ps(off0 + g * kPanel), o1 = _mm256_loadu_ps(off1 + g * kPanel);
    for (int i = 0; i < TR; ++i) {
      const __m256 xs = _mm256_set1_ps(xp.xs[(t + i) * xp.Gp + g]);
      const __m256 sx = _mm256_set1_ps(sums[(t + i) * xp.Gp + g]);
      const __m256 a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0[i]), _mm256_mul_ps(sc0, xs), _mm256_load_ps(acc[i]));
      const __m256 a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1[i]), _mm256_mul_ps(sc1, xs),
                                        _mm256_load_ps(acc[i] + kPanel));
      _mm256_store_ps(acc[i], _mm256_fmadd_ps(o0, sx, a0));
      _mm256_store_ps(acc[i] + kPanel, _mm256_fmadd_ps(o1, sx, a1));
    }
  }
  store_rows<TR>(acc, c, ldc);
}

// int6 weights (either mode): the byte panels against xq, two steps' int16 sums widened at once; each half group's
// int32 sums start at -32 times x's sum over those 16 (qsum16) and are scaled by the half's own scale.
template <int TR>
PG_TARGET_AVX2 void kernel_int6(const uint8_t* p0, const uint8_t* p1, const XPrep& xp, int64_t t, float* c,
                                int64_t ldc) {
  const int64_t G = xp.G, ldx = xp.K;
  const float* ws0 = reinterpret_cast<const float*>(p0 + G * kInt4Group);
  const float* ws1 = reinterpret_cast<const float*>(p1 + G * kInt4Group);
  const int8_t* x = xp.xq + t * ldx;
  const int32_t* q16 = xp.qsum16 + t * (ldx / 16);
  const __m256i ones = _mm256_set1_epi16(1);
  alignas(32) float acc[TR][2 * kPanel] = {};
  for (int64_t g = 0; g < G; ++g) {
    const __m256i* w0 = reinterpret_cast<const __m256i*>(p0 + g * kInt4Group);
    const __m256i* w1 = reinterpret_cast<const __m256i*>(p1 + g * kInt4Group);
    const int8_t* xg = x + g * kGroup;
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      __m256i s0[TR], s1[TR];
      for (int i = 0; i < TR; ++i) s0[i] = s1[i] = _mm256_set1_epi32(-32 * q16[i * (ldx / 16) + 2 * g + half]);
#pragma GCC unroll 2
      for (int st = 4 * half; st < 4 * half + 4; st += 2) {
        const __m256i a0 = _mm256_loadu_si256(w0 + st), a1 = _mm256_loadu_si256(w0 + st + 1);
        const __m256i b0 = _mm256_loadu_si256(w1 + st), b1 = _mm256_loadu_si256(w1 + st + 1);
        for (int i = 0; i < TR; ++i) {
          const __m256i x0 = four_bytes(xg + i * ldx + st * 4), x1 = four_bytes(xg + i * ldx + st * 4 + 4);
          const __m256i h0 = _mm256_add_epi16(_mm256_maddubs_epi16(a0, x0), _mm256_maddubs_epi16(a1, x1));
          const __m256i h1 = _mm256_add_epi16(_mm256_maddubs_epi16(b0, x0), _mm256_maddubs_epi16(b1, x1));
          s0[i] = _mm256_add_epi32(s0[i], _mm256_madd_epi16(h0, ones));
          s1[i] = _mm256_add_epi32(s1[i], _mm256_madd_epi16(h1, ones));
        }
      }
      const int64_t at = (2 * g + half) * kPanel;
      add_scaled<TR>(acc, s0, s1, _mm256_loadu_ps(ws0 + at), _mm256_loadu_ps(ws1 + at), xp.xs + t * xp.Gp + g, xp.Gp);
    }
  }
  store_rows<TR>(acc, c, ldc);
}

// int8 weights (fp32 mode): x16 as is against the int16-widened weights, vpmaddwd into int32 sums per group
// (|sum| <= 32 * 127 * 32639 < 2^31); no offsets. A step is 2 k: 16 products per multiply.
template <int TR>
PG_TARGET_AVX2 void kernel_int8w(const uint8_t* p0, const uint8_t* p1, const XPrep& xp, int64_t t, float* c,
                                 int64_t ldc) {
  constexpr int64_t gb = 16 * 32;
  const int64_t G = xp.G, K = xp.K;
  const float* ws0 = reinterpret_cast<const float*>(p0 + G * gb);
  const float* ws1 = reinterpret_cast<const float*>(p1 + G * gb);
  const int16_t* x = xp.x16 + t * K;
  alignas(32) float acc[TR][2 * kPanel] = {};
  for (int64_t g = 0; g < G; ++g) {
    __m256i s0[TR], s1[TR];
    for (int i = 0; i < TR; ++i) s0[i] = s1[i] = _mm256_setzero_si256();
    const __m256i* w0 = reinterpret_cast<const __m256i*>(p0 + g * gb);
    const __m256i* w1 = reinterpret_cast<const __m256i*>(p1 + g * gb);
    const int16_t* xg = x + g * kGroup;
    for (int st = 0; st < 16; ++st) {
      const __m256i a = _mm256_loadu_si256(w0 + st), b = _mm256_loadu_si256(w1 + st);
      for (int i = 0; i < TR; ++i) {
        const __m256i xb = four_bytes(xg + i * K + 2 * st);
        s0[i] = _mm256_add_epi32(s0[i], _mm256_madd_epi16(a, xb));
        s1[i] = _mm256_add_epi32(s1[i], _mm256_madd_epi16(b, xb));
        __asm__("" : "+x"(s0[i]), "+x"(s1[i]));
      }
    }
    add_scaled<TR>(acc, s0, s1, _mm256_loadu_ps(ws0 + g * kPanel), _mm256_loadu_ps(ws1 + g * kPanel),
                   xp.xs16 + t * xp.Gp + g, xp.Gp);
  }
  store_rows<TR>(acc, c, ldc);
}

using KernelFn = void (*)(const uint8_t*, const uint8_t*, const XPrep&, int64_t, float*, int64_t);
constexpr KernelFn kInt4Kernels[kMaxRows + 1] = {nullptr, kernel<1, false>, kernel<2, false>, kernel<3, false>,
                                                  kernel<4, false>};
constexpr KernelFn kInt5Kernels[kMaxRows + 1] = {nullptr, kernel<1, true>, kernel<2, true>, kernel<3, true>,
                                                  kernel<4, true>};
constexpr KernelFn kInt8wKernels[kMaxRows + 1] = {nullptr, kernel_int8w<1>, kernel_int8w<2>, kernel_int8w<3>,
                                                  kernel_int8w<4>};
constexpr KernelFn kInt6Kernels[kMaxRows + 1] = {nullptr, kernel_int6<1>, kernel_int6<2>, kernel_int6<3>,
                                                 kernel_int6<4>};

}  // namespace

PG_TARGET_AVX2 void gemm_rows(const QSeg& s, const XPrep& xp, int64_t n0, int64_t n1, float* out, int64_t ldo,
                              uint8_t* scratch) {
  const int64_t G = s.K / kGroup, pb = panel_bytes(s.kind, G), block = gemm_block_rows(s.K);
  // int4, int5 and int6: xq (int8 x); int8 weights: x16 as is
  const KernelFn* kernels = s.kind == kInt6   ? kInt6Kernels
                            : s.kind == kInt8 ? kInt8wKernels
                            : s.kind == kInt5 ? kInt5Kernels
                                              : kInt4Kernels;
  float tail[kMaxRows * 2 * kPanel];
  const auto pack = [&](int64_t r0, uint8_t* dst) { pack_panel(s, r0, dst); };
  panel_pairs(n0, n1, block, kPanel, pb, xp.T, kMaxRows, scratch, pack,
              [&](const uint8_t* p0, const uint8_t* p1, int64_t t, int64_t tr, int64_t r, int64_t width) {
                if (width == 2 * kPanel) {
                  kernels[tr](p0, p1, xp, t, out + t * ldo + r, ldo);
                  return;
                }
                kernels[tr](p0, p1, xp, t, tail, 2 * kPanel);
                for (int64_t i = 0; i < tr; ++i) {
                  std::memcpy(out + (t + i) * ldo + r, tail + i * 2 * kPanel, width * 4);
                }
              });
}

#else

void prepare_gemm_x16(XPrep&) {}
void gemm_rows(const QSeg&, const XPrep&, int64_t, int64_t, float*, int64_t, uint8_t*) {}

#endif

}  // namespace pg
