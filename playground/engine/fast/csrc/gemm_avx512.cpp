// Prefill's GEMM on AVX512-VNNI CPUs: int4, int5 and int6 weights times x rounded per group of 32 to int8, in
// integers.
//
// The bf16 GEMM through oneDNN (vdpbf16ps, 32 products per instruction) on tiles of dequantized rows was ~70% of a
// prefill on a 2-core Zen 4. Here vpdpbusd multiplies 64 unsigned 4-bit weights by 64 signed bytes of x and sums
// them, four at a time, straight into int32 lanes (nothing to saturate, no int16 stage as on AVX2): twice the
// products per instruction. x is rounded as the AVX2 GEMM and the int8 mode round it (xq, xs; the offsets meet x's
// group sums as rounded, kernels.h), in either mode. int5 weights (values 0..31) the same way; int6 ones (0..63, a
// scale per 16: a Q4_K_M file's Q6_K V and down projections) sum each half group apart, their -32 from x's sums per
// 16 (they took the bf16 tiles, ~17% of a Qwen2.5-3B Q4_K_M prefill). int8 weights keep the bf16 tiles.
//
// Weights are repacked per block of rows into panels of 16 rows: per group, 8 steps of [16 rows x 4 consecutive
// k] bytes (64: one vector), so one load meets a broadcast of 4 bytes of an x row and each int32 lane ends up
// holding one row's sum. Each group's sum is then scaled in fp32: scale * x scale, plus the offset times x's group
// sum.
#include <algorithm>

#include "gemm_pack.h"
#include "kernels.h"
#include "rows.h"
#include "simd.h"

namespace pg {

namespace {

constexpr int64_t kPanel = 16;               // rows per panel (one int32 lane each)
constexpr int64_t kMaxRows = 4;              // rows of x per kernel call
constexpr int64_t kGroupBytes = 8 * 64;      // one group of a panel: 8 steps of [16 rows x 4 k]
int64_t panel_bytes(int64_t G) { return G * (kGroupBytes + 2 * kPanel * 4); }  // + fp32 scales, offsets [G][16]

}  // namespace

int64_t gemm_block_rows_vnni512(int64_t K) {
  // ~256 KiB of panels per block (Zen 4's L2 is 1 MiB), whole pairs of panels.
  const int64_t rows = (int64_t{1} << 18) / std::max<int64_t>(K, 1) / 32 * 32;
  return std::clamp<int64_t>(rows, 32, 512);
}

int64_t gemm_scratch_bytes_vnni512(int64_t K) { return gemm_block_rows_vnni512(K) / kPanel * panel_bytes(K / kGroup); }

#if PG_X86

namespace {

// Rows [r0, r0 + 16) of an int4, int5 or int6 segment (rows at or past N: zeros) as one panel at dst: per row, the
// group's q[0..15] (steps 0-3), then q[16..31] (steps 4-7); then fp32 [G][16] scales and offsets (int6: the two
// half groups' scales, [2G][16]).
PG_TARGET_VNNI512 void pack_panel(const QSeg& s, int64_t r0, uint8_t* dst) {
  const int64_t G = s.K / kGroup;
  const bool int6 = s.kind == kInt6;
  float* ws = reinterpret_cast<float*>(dst + G * kGroupBytes);
  float* off = ws + G * kPanel;
  for (int64_t g = 0; g < G; ++g) {
    __m256i* out = reinterpret_cast<__m256i*>(dst + g * kGroupBytes);
    for (int c = 0; c < 2; ++c) {
      __m128i h[kPanel];
      for (int64_t r = 0; r < kPanel; ++r) {
        h[r] = r0 + r >= s.N ? _mm_setzero_si128() : int6 ? int6_bytes(s, r0 + r, g, c) : nibble_chunk(s, r0 + r, g, c);
      }
      transpose_8x4(h, out + 8 * c, 2);          // step 4c + j: rows 0-7 in its first 32 bytes
      transpose_8x4(h + 8, out + 8 * c + 1, 2);  // rows 8-15 in its second
    }
  }
  params16(s, r0, std::clamp<int64_t>(s.N - r0, 0, kPanel), G, ws, off);  // all 16 rows at once
}

// Rows t..t+TR of x (xq: int8) times the two panels at p0 and p1 (32 rows of the weight) into c (row stride ldc),
// the columns of m0 / m1 stored. Each group's int32 sums, then the fp32 results, stay in registers. kSym (Q4_0's
// and Q5_0's implied offsets, -bias * scale, bias 8 or 16): the sums start at -bias times x's group sum, so the
// weights are q - bias in integers and no offset term is added (the per-group fp32 work is what bounds this loop:
// 3 operations per 8 vpdpbusd, not 4). kHalves (int6, bias 32): each half group's sums apart (steps 0-3, 4-7),
// started at -32 times x's sum over those 16, then each scaled by its own scale.
enum Mode { kAsym = 0, kSym = 1, kHalves = 2 };
template <int TR, int MODE>
PG_TARGET_VNNI512 void kernel(const uint8_t* p0, const uint8_t* p1, const XPrep& xp, int64_t t, float* c,
                              int64_t ldc, __mmask16 m0, __mmask16 m1, int32_t bias) {
  constexpr bool SYM = MODE == kSym, HALVES = MODE == kHalves;
  const int64_t G = xp.G, ldx = xp.K;
  const float* sums = offset_sums(xp);  // the int8 mode's: x as rounded
  const float* ws0 = reinterpret_cast<const float*>(p0 + G * kGroupBytes);
  const float* ws1 = reinterpret_cast<const float*>(p1 + G * kGroupBytes);
  const float *off0 = ws0 + G * kPanel, *off1 = ws1 + G * kPanel;
  const int8_t* x = xp.xq + t * ldx;
  __m512 f0[TR], f1[TR];
  for (int i = 0; i < TR; ++i) f0[i] = f1[i] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    __m512i a0[TR], a1[TR], h0[HALVES ? TR : 1], h1[HALVES ? TR : 1];  // h: int6's second halves
    for (int i = 0; i < TR; ++i) {
      a0[i] = a1[i] = SYM ? _mm512_set1_epi32(-bias * xp.qsum[(t + i) * xp.Gp + g]) : _mm512_setzero_si512();
      if constexpr (HALVES) {
        const int32_t* q16 = xp.qsum16 + (t + i) * (ldx / 16) + 2 * g;
        a0[i] = a1[i] = _mm512_set1_epi32(-bias * q16[0]);
        h0[i] = h1[i] = _mm512_set1_epi32(-bias * q16[1]);
      }
    }
    const uint8_t* w0 = p0 + g * kGroupBytes;
    const uint8_t* w1 = p1 + g * kGroupBytes;
    const int8_t* xg = x + g * kGroup;
    for (int st = 0; st < 8; ++st) {
      const __m512i a = _mm512_loadu_si512(w0 + 64 * st), b = _mm512_loadu_si512(w1 + 64 * st);
      for (int i = 0; i < TR; ++i) {
        const __m512i xb = _mm512_set1_epi32(four_bytes_at(xg + i * ldx + 4 * st));
        if (HALVES && st >= 4) {
          h0[HALVES ? i : 0] = _mm512_dpbusd_epi32(h0[HALVES ? i : 0], a, xb);
          h1[HALVES ? i : 0] = _mm512_dpbusd_epi32(h1[HALVES ? i : 0], b, xb);
        } else {
          a0[i] = _mm512_dpbusd_epi32(a0[i], a, xb);
          a1[i] = _mm512_dpbusd_epi32(a1[i], b, xb);
        }
      }
    }
    const __m512 sc0 = _mm512_loadu_ps(ws0 + (HALVES ? 2 : 1) * g * kPanel);
    const __m512 sc1 = _mm512_loadu_ps(ws1 + (HALVES ? 2 : 1) * g * kPanel);
    for (int i = 0; i < TR; ++i) {
      const __m512 xs = _mm512_set1_ps(xp.xs[(t + i) * xp.Gp + g]);
      if constexpr (HALVES) {
        const __m512 hs0 = _mm512_loadu_ps(ws0 + (2 * g + 1) * kPanel), hs1 = _mm512_loadu_ps(ws1 + (2 * g + 1) * kPanel);
        f0[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(h0[i]), _mm512_mul_ps(hs0, xs), f0[i]);
        f1[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(h1[i]), _mm512_mul_ps(hs1, xs), f1[i]);
      }
      f0[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0[i]), _mm512_mul_ps(sc0, xs), f0[i]);
      f1[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1[i]), _mm512_mul_ps(sc1, xs), f1[i]);
      if (MODE == kAsym) {
        const __m512 sx = _mm512_set1_ps(sums[(t + i) * xp.Gp + g]);
        f0[i] = _mm512_fmadd_ps(_mm512_loadu_ps(off0 + g * kPanel), sx, f0[i]);
        f1[i] = _mm512_fmadd_ps(_mm512_loadu_ps(off1 + g * kPanel), sx, f1[i]);
      }
    }
  }
  for (int i = 0; i < TR; ++i) {
    _mm512_mask_storeu_ps(c + i * ldc, m0, f0[i]);
    _mm512_mask_storeu_ps(c + i * ldc + kPanel, m1, f1[i]);
  }
}

using KernelFn = void (*)(const uint8_t*, const uint8_t*, const XPrep&, int64_t, float*, int64_t, __mmask16,
                          __mmask16, int32_t);
constexpr KernelFn kKernels[3][kMaxRows + 1] = {
    {nullptr, kernel<1, kAsym>, kernel<2, kAsym>, kernel<3, kAsym>, kernel<4, kAsym>},
    {nullptr, kernel<1, kSym>, kernel<2, kSym>, kernel<3, kSym>, kernel<4, kSym>},
    {nullptr, kernel<1, kHalves>, kernel<2, kHalves>, kernel<3, kHalves>, kernel<4, kHalves>}};

__mmask16 lanes(int64_t n) { return n >= kPanel ? 0xFFFF : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1); }

}  // namespace

PG_TARGET_VNNI512 void gemm_rows_vnni512(const QSeg& s, const XPrep& xp, int64_t n0, int64_t n1, float* out,
                                         int64_t ldo, uint8_t* scratch) {
  const int64_t G = s.K / kGroup, pb = panel_bytes(G), block = gemm_block_rows_vnni512(s.K);
  const bool int6 = s.kind == kInt6;
  const auto bias = static_cast<int32_t>(int6 ? 32.f : -implied_offset(s.kind));
  const KernelFn* kernels = kKernels[int6 ? kHalves : symmetric(s) ? kSym : kAsym];
  const auto pack = [&](int64_t r0, uint8_t* dst) { pack_panel(s, r0, dst); };
  panel_pairs(n0, n1, block, kPanel, pb, xp.T, kMaxRows, scratch, pack,
              [&](const uint8_t* p0, const uint8_t* p1, int64_t t, int64_t tr, int64_t r, int64_t width) {
                kernels[tr](p0, p1, xp, t, out + t * ldo + r, ldo, lanes(width), lanes(width - kPanel), bias);
              });
}

#else

void gemm_rows_vnni512(const QSeg&, const XPrep&, int64_t, int64_t, float*, int64_t, uint8_t*) {}

#endif

}  // namespace pg
