// Prefill's GEMM for a few rows of x on the AVX2 path (int4 and int5 weights, x as int8): the numbers of gemm_rows
// (gemm_avx2.cpp), bit for bit, without its panels, as gemm_small.cpp does on AVX512-VNNI.
//
// Each pair of groups of a row is read as 32 bytes of values (nibble_chunk), multiplied with vpmaddubsw by x in the
// same order and widened by vpmaddwd: 4 int32 lanes a group, summed with two vphaddd's per 8 groups, then 8 rows'
// sums turned so one vector holds a group's 8 rows (the panel kernel's lanes). From there on the panel kernel's
// fp32 steps, in its order: the sum times scale times x scale, then the offset times x's sum as rounded.
#include <algorithm>
#include <vector>

#include "gemm_pack.h"
#include "kernels.h"
#include "ops.h"
#include "rows.h"
#include "simd.h"

namespace pg {

#if PG_X86

namespace {

constexpr int64_t kRows = 8;  // weight rows per block: one int32 / fp32 lane each

// r[i] (row i's 8 values) -> r[j] (value j of the 8 rows).
PG_TARGET_AVX2 PG_INLINE void transpose8(__m256i (&r)[8]) {
  __m256i t[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  __m256i u[8];  // u[4i + k], 128-bit lane L: rows 4i..4i+3 of value 4L + k
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
    r[4 + k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
  }
}

// Row n's values of groups [g8, g8 + 8) (pairs whole) as vpmaddubsw takes them: pair k's values 0..15 of both groups
// (lo[k]), then 16..31 (hi[k]).
PG_TARGET_AVX2 PG_INLINE void eight_groups(const QSeg& s, int64_t n, int64_t g8, __m256i (&lo)[4], __m256i (&hi)[4]) {
  for (int k = 0; k < 4; ++k) {
    const int64_t g = g8 + 2 * k;
    lo[k] = _mm256_set_m128i(nibble_chunk(s, n, g + 1, 0), nibble_chunk(s, n, g, 0));
    hi[k] = _mm256_set_m128i(nibble_chunk(s, n, g + 1, 1), nibble_chunk(s, n, g, 1));
  }
}

// Their integer sums against one row of x (xv: its pairs of groups in the same order, x_pairs): element 4L + k
// holds group g8 + 2k + L.
PG_TARGET_AVX2 PG_INLINE __m256i eight_sums(const __m256i (&lo)[4], const __m256i (&hi)[4], const __m256i* xv) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i v[4];
  for (int k = 0; k < 4; ++k) {
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo[k], _mm256_loadu_si256(xv + 2 * k)),
                                       _mm256_maddubs_epi16(hi[k], _mm256_loadu_si256(xv + 2 * k + 1)));
    v[k] = _mm256_madd_epi16(p, ones);  // (|p| <= 2 * 2 * 31 * 127: no int16 saturates)
  }
  return _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
}

// x's rows by pair of groups (xv: [T][G / 2][2] vectors): both groups' values 0..15, then 16..31.
PG_TARGET_AVX2 void x_pairs(const XPrep& xp, __m256i* xv) {
  const int64_t P = xp.G / 2;
  for (int64_t t = 0; t < xp.T; ++t) {
    for (int64_t q = 0; q < P; ++q) {
      const int8_t* p = xp.xq + t * xp.K + 2 * q * kGroup;
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kGroup));
      _mm256_storeu_si256(xv + 2 * (t * P + q), _mm256_permute2x128_si256(a, b, 0x20));
      _mm256_storeu_si256(xv + 2 * (t * P + q) + 1, _mm256_permute2x128_si256(a, b, 0x31));
    }
  }
}

// One group's integer sum, row n against x row t (the groups past the last whole 8).
PG_TARGET_AVX2 PG_INLINE int32_t group_sum(const QSeg& s, int64_t n, int64_t g, const int8_t* x) {
  const __m128i lo = nibble_chunk(s, n, g, 0), hi = nibble_chunk(s, n, g, 1);
  const __m128i* xg = reinterpret_cast<const __m128i*>(x + g * kGroup);
  const __m128i p =
      _mm_add_epi16(_mm_maddubs_epi16(lo, _mm_loadu_si128(xg)), _mm_maddubs_epi16(hi, _mm_loadu_si128(xg + 1)));
  const __m128i d = _mm_madd_epi16(p, _mm_set1_epi16(1));
  const __m128i h = _mm_add_epi32(d, _mm_unpackhi_epi64(d, d));
  return _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 1)));
}

}  // namespace

// Under 8 rows of x: up to 6 it measured 1.5-2.7x faster than the panels (capped at avx2 on a Zen 4: a 22016x2048
// Q4_K weight at T = 1 5.6 -> 2.1 ms, T = 6 6.8 -> 4.6 ms), at 12 level or slower (its sums no longer stay in L2
// at K = 8192).
bool gemm_small_avx2_takes(const QSeg& s, int64_t T) { return nibble_kind(s.kind) && T < 8; }

PG_TARGET_AVX2 void gemm_small_avx2(const QSeg& s, const XPrep& xp, int64_t n0, int64_t n1, float* out, int64_t ldo) {
  const int64_t G = xp.G, T = xp.T, G8 = G / 8 * 8;
  const float* osum = offset_sums(xp);
  thread_local std::vector<int32_t> sums_kept;
  thread_local std::vector<float> params_kept;
  thread_local std::vector<int32_t> vectors_kept;
  const int64_t P = G / 2, B = G8 / 8;
  int32_t* sums = reused(sums_kept, T * G * kRows);  // [t][g][8]
  float* scale = reused(params_kept, 4 * G * kRows);
  float *offset = scale + G * kRows, *by_row = offset + G * kRows;
  // x_pairs, then each row's sums of each 8 groups against each row of x ([T][B][8] vectors)
  __m256i* xv = reinterpret_cast<__m256i*>(reused(vectors_kept, 8 * (2 * T * P + T * B * kRows)));
  __m256i* r = xv + 2 * T * P;
  x_pairs(xp, xv);
  for (int64_t r0 = n0; r0 < n1; r0 += kRows) {
    const int64_t rows = std::min(kRows, n1 - r0);
    // the panels' scales and offsets (group_params' values; implied offsets too), by group
    params_to_floats(kAvx2, s, r0, r0 + rows, by_row, by_row + rows * G);
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t i = 0; i < kRows; ++i) {
        scale[g * kRows + i] = i < rows ? by_row[i * G + g] : 0.f;
        offset[g * kRows + i] = i < rows ? by_row[(rows + i) * G + g] : 0.f;
      }
    }
    for (int64_t i = 0; i < rows; ++i) {  // each row read once, its values taken apart once for all rows of x
      for (int64_t b = 0; b < B; ++b) {
        __m256i lo[4], hi[4];
        eight_groups(s, r0 + i, 8 * b, lo, hi);
        for (int64_t t = 0; t < T; ++t) {
          _mm256_storeu_si256(r + (t * B + b) * kRows + i, eight_sums(lo, hi, xv + 2 * (t * P + 4 * b)));
        }
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t b = 0; b < B; ++b) {
        __m256i m[8];
        for (int64_t i = 0; i < kRows; ++i) {
          m[i] = i < rows ? _mm256_loadu_si256(r + (t * B + b) * kRows + i) : _mm256_setzero_si256();
        }
        transpose8(m);
        for (int j = 0; j < 8; ++j) {  // value j: group 2 * (j % 4) + j / 4
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + (t * G + 8 * b + 2 * (j % 4) + j / 4) * kRows), m[j]);
        }
      }
      const int8_t* x = xp.xq + t * xp.K;
      for (int64_t g = G8; g < G; ++g) {  // past the last whole 8
        for (int64_t i = 0; i < kRows; ++i) sums[(t * G + g) * kRows + i] = i < rows ? group_sum(s, r0 + i, g, x) : 0;
      }
    }
    for (int64_t t = 0; t < T; ++t) {  // the panel kernel's steps (gemm_avx2.cpp), group by group
      __m256 acc = _mm256_setzero_ps();
      for (int64_t g = 0; g < G; ++g) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sums + (t * G + g) * kRows));
        const __m256 xs = _mm256_set1_ps(xp.xs[t * xp.Gp + g]), sx = _mm256_set1_ps(osum[t * xp.Gp + g]);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(_mm256_loadu_ps(scale + g * kRows), xs), acc);
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(offset + g * kRows), sx, acc);
      }
      alignas(32) float row[kRows];
      _mm256_store_ps(row, acc);
      for (int64_t i = 0; i < rows; ++i) out[t * ldo + r0 + i] = row[i];
    }
  }
}

#else

bool gemm_small_avx2_takes(const QSeg&, int64_t) { return false; }
void gemm_small_avx2(const QSeg&, const XPrep&, int64_t, int64_t, float*, int64_t) {}

#endif

}  // namespace pg
