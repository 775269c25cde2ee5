// Prefill's GEMM for a few rows of x on AVX512-VNNI (int4, int5 and int6 weights): the numbers of
// gemm_rows_vnni512, bit for bit, without its panels.
//
// The packed GEMM transposes every weight into panels of 16 rows before it multiplies: a fixed cost of ~6 GEMVs
// per call (a [22016, 2048] Q4_K weight: 4.9 ms at T = 1, its GEMV 0.7 ms), which a prompt of a few tokens never
// earns back, and that is the common case: a new prompt after a cached source, a chat's next turn. Here each row
// is read as decode reads it (quad_values: 4 groups' values per 64 bytes, x in the same order), each group's
// integer sum reduced across its 4 lanes, and 16 rows' sums turned so one vector holds a group's 16 rows: from
// there on the per-group fp32 steps are the packed kernel's, in its order, so a prompt position computes the same
// whether it ran alone or among 500 (prefill's promise, ops.cpp).
#include <algorithm>
#include <vector>

#include "kernels.h"
#include "ops.h"
#include "rows.h"
#include "simd.h"
#include "vnni_quads.h"

namespace pg {

#if PG_X86

namespace {

constexpr int64_t kRows = 16;  // weight rows per block: one int32 / fp32 lane each
constexpr int kInt5InQ5K = -kInt5;  // the templates' name for int5 in QSeg::k5's layout (not a weight kind)

// v[q]: a row's sums over quad q of a 16-group block, 4 lanes per group (lanes 4i..4i+3: group 4q + i). Returns
// the 16 groups' sums, element 4L + q holding group 4q + L.
PG_TARGET_VNNI512 PG_INLINE __m512i group_sums(const __m512i (&v)[4]) {
  const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
  const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}

// r[i] (row i's 16 values) -> r[j] (value j of the 16 rows).
PG_TARGET_VNNI512 PG_INLINE void transpose16(__m512i (&r)[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // r[4i + k], 128-bit lane L: rows 4i..4i+3 of value 4L + k
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int k = 0; k < 4; ++k) t[k] = r[k], t[4 + k] = r[4 + k], t[8 + k] = r[8 + k], t[12 + k] = r[12 + k];
  for (int k = 0; k < 4; ++k) {
    const __m512i a = _mm512_shuffle_i32x4(t[k], t[4 + k], 0x44), b = _mm512_shuffle_i32x4(t[k], t[4 + k], 0xEE);
    const __m512i c = _mm512_shuffle_i32x4(t[8 + k], t[12 + k], 0x44);
    const __m512i d = _mm512_shuffle_i32x4(t[8 + k], t[12 + k], 0xEE);
    r[k] = _mm512_shuffle_i32x4(a, c, 0x88);
    r[4 + k] = _mm512_shuffle_i32x4(a, c, 0xDD);
    r[8 + k] = _mm512_shuffle_i32x4(b, d, 0x88);
    r[12 + k] = _mm512_shuffle_i32x4(b, d, 0xDD);
  }
}

// Groups g..g+3 (g a multiple of 4) of an int6 row (int6_bytes' layout) as quad_values gives int4 ones: each
// group's values 0..15 (lo), then 16..31 (hi), 0..63.
PG_TARGET_VNNI512 PG_INLINE void int6_quad(const QSeg& s, int64_t n, int64_t g, __m512i& lo, __m512i& hi) {
  const uint8_t* blk = s.q + n * row_bytes(s) + g / 8 * 192;
  const int quad = static_cast<int>(g % 8 / 4);
  const __m512i nib = _mm512_loadu_si512(blk + 64 * quad), pairs = _mm512_loadu_si512(blk + 128);
  const __m512i low4 = _mm512_set1_epi8(0x0F), two = _mm512_set1_epi8(0x30);
  const __m512i top = quad ? _mm512_srli_epi16(pairs, 4) : pairs;  // bits 0-1: lo's top bits, 2-3: hi's
  lo = _mm512_or_si512(_mm512_and_si512(nib, low4), _mm512_and_si512(_mm512_slli_epi16(top, 4), two));
  hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(nib, 4), low4),
                       _mm512_and_si512(_mm512_slli_epi16(top, 2), two));
}

// Block b (16 groups, QUADS of them whole 4s) of row n against every row of x: each x row's 16 group sums into
// slot(t, half, b, i).
template <int KIND, int QUADS, class SLOT>
PG_TARGET_VNNI512 PG_INLINE void row_block(const QSeg& s, const XPrep& xp, const uint8_t* row, int64_t n, int64_t b,
                                           const SLOT& slot, int64_t i) {
  constexpr bool FIVE = KIND == kInt5 || KIND == kInt5InQ5K, K5 = KIND == kInt5InQ5K, HALVES = KIND == kInt6;
  __m512i lo[QUADS], hi[QUADS];
  for (int q = 0; q < QUADS; ++q) {
    if (HALVES) int6_quad(s, n, 16 * b + 4 * q, lo[q], hi[q]);
    else quad_values<FIVE, K5>(row, 16 * b + 4 * q, lo[q], hi[q]);
  }
  for (int64_t t = 0; t < xp.T; ++t) {
    __m512i v[4], h[4];  // h: int6's second halves apart
    for (int q = 0; q < 4; ++q) v[q] = h[q] = _mm512_setzero_si512();
    const int8_t* x = xp.xq4 + t * xp.K + 16 * b * kGroup;  // each quad: 4 groups' first halves, then last
    for (int q = 0; q < QUADS; ++q) {
      v[q] = _mm512_dpbusd_epi32(v[q], lo[q], _mm512_loadu_si512(x + 128 * q));
      __m512i& second = HALVES ? h[q] : v[q];
      second = _mm512_dpbusd_epi32(second, hi[q], _mm512_loadu_si512(x + 128 * q + 64));
    }
    _mm512_storeu_si512(slot(t, 0, b, i), group_sums(v));
    if (HALVES) _mm512_storeu_si512(slot(t, 1, b, i), group_sums(h));
  }
}

// Blocks of 16 groups per pass over 16 rows: as many as keep a pass's sums within ~48 KB (T rows of x, each block's
// 16 rows' sums twice over: 2 KB), at least 2. Whole rows at once ran ~10% faster at T = 2 on Llama-3.2-1B than 2
// blocks a pass; 2 blocks, where whole rows' scratch had grown to ~0.6 MB a thread (K = 8192, T = 12), 15-25%.
int64_t window_blocks(int64_t T, int64_t blocks) {
  return std::clamp<int64_t>(24 / std::max<int64_t>(T, 1), 2, blocks);
}

// Integer sums of rows [r0, r0 + rows) (rows <= 16; the rest zeros) over groups [16 * b0, min(G, 16 * b1)) against
// every row of x (XPrep::xq4: x in quad_values' order): sums[half][t][g - 16 * b0][16] (half 1: int6's second half
// groups). The 16 rows are read one after another (the next 16 asked for into L2 as a
// pass starts at 0), each row's 16 groups' sums kept (r: [2][T][window][16] vectors), then turned.
template <int KIND>
PG_TARGET_VNNI512 void block_sums(const QSeg& s, const XPrep& xp, int64_t r0, int64_t rows, int64_t b0, int64_t b1,
                                  int64_t window, int32_t* sums, int32_t* r) {
  constexpr bool FIVE = KIND == kInt5 || KIND == kInt5InQ5K, K5 = KIND == kInt5InQ5K, HALVES = KIND == kInt6;
  const int64_t G = xp.G, K = xp.K, T = xp.T, rb = row_bytes(s), Q = G / 4, W = b1 - b0;
  const int64_t g0 = 16 * b0, g1 = std::min(G, 16 * b1);
  const auto slot = [&](int64_t t, int half, int64_t b, int64_t i) {
    return r + 16 * (((half * T + t) * window + b - b0) * kRows + i);
  };
  const auto at = [&](int half, int64_t t, int64_t g) { return sums + ((half * T + t) * W * 16 + g - g0) * kRows; };
  for (int64_t i = 0; i < rows; ++i) {
    if (b0 == 0 && r0 + kRows + i < s.N) {
      const char* next = reinterpret_cast<const char*>(s.q + (r0 + kRows + i) * rb);
      for (int64_t off = 0; off < rb; off += 64) _mm_prefetch(next + off, _MM_HINT_T2);
    }
    const uint8_t* row = s.q + (r0 + i) * rb;
    for (int64_t b = b0; b < b1; ++b) {
      switch (std::min<int64_t>(4, Q - 4 * b)) {  // quads in the block (constant counts: sums stay in registers)
        case 4: row_block<KIND, 4>(s, xp, row, r0 + i, b, slot, i); break;
        case 3: row_block<KIND, 3>(s, xp, row, r0 + i, b, slot, i); break;
        case 2: row_block<KIND, 2>(s, xp, row, r0 + i, b, slot, i); break;
        case 1: row_block<KIND, 1>(s, xp, row, r0 + i, b, slot, i); break;
        default: break;  // only groups past the last whole 4
      }
    }
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int half = 0; half < (HALVES ? 2 : 1); ++half) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t quads = std::min<int64_t>(4, Q - 4 * b);
        if (quads <= 0) continue;
        __m512i m[16];
        for (int64_t i = 0; i < kRows; ++i) {
          m[i] = i < rows ? _mm512_loadu_si512(slot(t, half, b, i)) : _mm512_setzero_si512();
        }
        transpose16(m);
        for (int j = 0; j < 16; ++j) {  // value j: group 4 * (j % 4) + j / 4, of a quad this block has
          if (j % 4 < quads) _mm512_storeu_si512(at(half, t, 16 * b + 4 * (j % 4) + j / 4), m[j]);
        }
      }
    }
  }
  for (int64_t g = std::max(g0, G / 4 * 4); g < g1 && !HALVES; ++g) {  // past the last whole 4 (int6: none)
    for (int64_t i = 0; i < kRows; ++i) {
      const __m256i w = i < rows ? group_values<FIVE, K5>(s.q + (r0 + i) * rb, g) : _mm256_setzero_si256();
      for (int64_t t = 0; t < T; ++t) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp.xq + t * K + g * kGroup));
        const __m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x);
        const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
        const __m128i h2 = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
        at(0, t, g)[i] = _mm_cvtsi128_si32(_mm_add_epi32(h2, _mm_shuffle_epi32(h2, 1)));
      }
    }
  }
}

// in [rows][G] (rows <= 16) -> out [G][16], rows past `rows` zeros.
PG_TARGET_VNNI512 void params_by_group(const float* in, int64_t rows, int64_t G, float* out) {
  for (int64_t g16 = 0; g16 < G; g16 += 16) {
    const __mmask16 m = static_cast<__mmask16>(G - g16 >= 16 ? 0xFFFF : (1u << (G - g16)) - 1);
    __m512i v[16];
    for (int64_t i = 0; i < 16; ++i) {
      v[i] = i < rows ? _mm512_castps_si512(_mm512_maskz_loadu_ps(m, in + i * G + g16)) : _mm512_setzero_si512();
    }
    transpose16(v);
    for (int64_t j = 0; j < 16 && g16 + j < G; ++j) _mm512_storeu_si512(out + (g16 + j) * kRows, v[j]);
  }
}

// The parameters of super-block b of 16 rows (rows past `rows`: zeros), turned: v[j] holds value j of each row.
// K-quants (Q4_K / Q5_K): j < 8 group j's scale (d times its code), j >= 8 its offset (-dmin times its min code), as
// group_params gives them; int6 (Q6_K): scale j (d times its int8 code, int6_scale_at's order), as int6_half_scale.
PG_TARGET_VNNI512 void block_params16(const QSeg& s, int64_t r0, int64_t rows, int64_t b, __m512i (&v)[16]) {
  const bool int6 = s.kind == kInt6;
  for (int64_t i = 0; i < 16; ++i) {
    if (i >= rows) {
      v[i] = _mm512_setzero_si512();
      continue;
    }
    if (int6) {
      v[i] = _mm512_castps_si512(int6_scales16(int6_params(s, r0 + i, b)));
      continue;
    }
    const uint8_t* p = super_at(s, r0 + i, b * kSuperGroups);
    const __m512i codes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m512 d = _mm512_mask_mov_ps(_mm512_set1_ps(super_half(p, 16)), 0xFF00, _mm512_set1_ps(-super_half(p, 18)));
    v[i] = _mm512_castps_si512(_mm512_mul_ps(_mm512_cvtepi32_ps(codes), d));  // d * sc, then -dmin * m
  }
  transpose16(v);
}

// 16 rows' K-quant or int6 parameters by group: scale and offset [G][16] (int6: its half groups' scales [2G][16]).
PG_TARGET_VNNI512 void kparams16(const QSeg& s, int64_t r0, int64_t rows, int64_t G, float* scale, float* offset) {
  for (int64_t b = 0; b < G / kSuperGroups; ++b) {
    __m512i v[16];
    block_params16(s, r0, rows, b, v);
    for (int c = 0; c < 16; ++c) {
      if (s.kind == kInt6) {  // scale c: group c / 4 + 4 * (c % 4 / 2) of the block's 8, half c % 2
        const int64_t g = b * kSuperGroups + c / 4 + 4 * (c % 4 / 2);
        _mm512_storeu_si512(scale + (2 * g + c % 2) * kRows, v[c]);
      } else {
        _mm512_storeu_si512((c < 8 ? scale : offset) + (b * kSuperGroups + c % 8) * kRows, v[c]);
      }
    }
  }
}

}  // namespace

PG_TARGET_VNNI512 void params16(const QSeg& s, int64_t r0, int64_t rows, int64_t G, float* scale, float* offset) {
  if (s.kparams) return kparams16(s, r0, rows, G, scale, offset);
  thread_local std::vector<float> kept;
  float* by_row = reused(kept, 2 * kRows * G);
  const bool sym = symmetric(s);
  params_to_floats(kAvx512, s, r0, r0 + rows, by_row, sym ? nullptr : by_row + rows * G);
  params_by_group(by_row, rows, G, scale);
  if (!sym) params_by_group(by_row + rows * G, rows, G, offset);
}

bool gemm_small_vnni512_takes(const QSeg& s, int64_t T) {
  return (nibble_kind(s.kind) || s.kind == kInt6) && T < kGemmSmallT;
}

PG_TARGET_VNNI512 void gemm_small_vnni512(const QSeg& s, const XPrep& xp, int64_t n0, int64_t n1, float* out,
                                          int64_t ldo) {
  const int64_t G = xp.G, T = xp.T;
  const bool sym = symmetric(s);
  const auto bias = static_cast<int32_t>(-implied_offset(s.kind));
  const float* osum = offset_sums(xp);
  thread_local std::vector<int32_t> sums_kept;
  thread_local std::vector<float> params_kept;
  thread_local std::vector<int32_t> vectors_kept;
  const bool int6 = s.kind == kInt6;
  const int64_t blocks = (G + 15) / 16;
  const int64_t window = window_blocks(T, blocks);
  int32_t* sums = reused(sums_kept, 2 * T * window * 16 * kRows);  // a window's sums
  float* acc = reinterpret_cast<float*>(reused(vectors_kept, 16 * (2 * T * window * kRows + T)));
  int32_t* r = reinterpret_cast<int32_t*>(acc + 16 * T);  // block_sums' per-row sums
  float* scale = reused(params_kept, 2 * G * kRows);  // int6: [2G][16] half group scales
  float* offset = scale + G * kRows;
  for (int64_t r0 = n0; r0 < n1; r0 += kRows) {
    const int64_t rows = std::min(kRows, n1 - r0);
    if (s.kparams && r0 + 2 * kRows <= s.N) {  // the next 16 rows' parameters (one run of bytes), ahead of their use
      const int64_t pb = param_bytes_per_row(s, G);
      const char* next = reinterpret_cast<const char*>(s.kparams + (r0 + kRows) * pb);
      for (int64_t off = 0; off < kRows * pb; off += 64) _mm_prefetch(next + off, _MM_HINT_T0);
    }
    params16(s, r0, rows, G, scale, offset);  // the packed kernel's scales and offsets, by group
    for (int64_t t = 0; t < T; ++t) _mm512_storeu_ps(acc + 16 * t, _mm512_setzero_ps());
    for (int64_t b0 = 0; b0 < blocks; b0 += window) {
      const int64_t b1 = std::min(blocks, b0 + window), g0 = 16 * b0, g1 = std::min(G, 16 * b1), W = b1 - b0;
      if (int6) block_sums<kInt6>(s, xp, r0, rows, b0, b1, window, sums, r);
      else if (s.kind == kInt5 && s.k5) block_sums<kInt5InQ5K>(s, xp, r0, rows, b0, b1, window, sums, r);
      else if (s.kind == kInt5) block_sums<kInt5>(s, xp, r0, rows, b0, b1, window, sums, r);
      else block_sums<kInt4>(s, xp, r0, rows, b0, b1, window, sums, r);
      for (int64_t t = 0; t < T; ++t) {  // the packed kernel's steps (gemm_avx512.cpp), group by group
        __m512 f = _mm512_loadu_ps(acc + 16 * t);
        const int32_t* first = sums + t * W * 16 * kRows;
        const int32_t* second = sums + (T + t) * W * 16 * kRows;
        for (int64_t g = g0; g < g1; ++g) {
          const __m512 xs = _mm512_set1_ps(xp.xs[t * xp.Gp + g]);
          __m512i a = _mm512_loadu_si512(first + (g - g0) * kRows);
          if (int6) {  // the second half's sum first, each from -32 times x's sum over its 16
            const int32_t* q16 = xp.qsum16 + t * (xp.K / 16) + 2 * g;
            const __m512i h = _mm512_add_epi32(_mm512_loadu_si512(second + (g - g0) * kRows),
                                               _mm512_set1_epi32(-32 * q16[1]));
            const __m512 hs = _mm512_loadu_ps(scale + (2 * g + 1) * kRows);
            f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(h), _mm512_mul_ps(hs, xs), f);
            a = _mm512_add_epi32(a, _mm512_set1_epi32(-32 * q16[0]));
            f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(_mm512_loadu_ps(scale + 2 * g * kRows), xs), f);
            continue;
          }
          if (sym) a = _mm512_add_epi32(a, _mm512_set1_epi32(-bias * xp.qsum[t * xp.Gp + g]));
          f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(_mm512_loadu_ps(scale + g * kRows), xs), f);
          if (!sym) f = _mm512_fmadd_ps(_mm512_loadu_ps(offset + g * kRows), _mm512_set1_ps(osum[t * xp.Gp + g]), f);
        }
        _mm512_storeu_ps(acc + 16 * t, f);
      }
    }
    const __mmask16 m = static_cast<__mmask16>((1u << rows) - 1);
    for (int64_t t = 0; t < T; ++t) _mm512_mask_storeu_ps(out + t * ldo + r0, m, _mm512_loadu_ps(acc + 16 * t));
  }
}

#else

bool gemm_small_vnni512_takes(const QSeg&, int64_t) { return false; }
void gemm_small_vnni512(const QSeg&, const XPrep&, int64_t, int64_t, float*, int64_t) {}

#endif

}  // namespace pg
