// Weight dequantization: rows of any format to fp32 or bf16 (prefill's tiles for a BLAS GEMM, the exact-fp32 path,
// embedding rows), fp32 to bf16, and a row block's scales and offsets to fp32 (the decode paths that take fp32
// copies; see kernels.h).
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "rows.h"
#include "simd.h"

namespace pg {

// ---------------------------------------------------------------- dequantization -----------------------------------

static uint16_t bf16_round(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((x >> 16) | 0x40);  // NaN stays NaN
  return static_cast<uint16_t>((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

static void dequant_row_scalar(const QSeg& s, int64_t n, float* out) {
  const int64_t G = s.K / kGroup;
  for (int64_t g = 0; g < G; ++g) {
    const float sc = group_scale(s, n, g);
    float* o = out + g * kGroup;
    if (s.kind == kInt4) {
      const float of = group_offset(s, n, g);
      const uint8_t* b = s.q + n * (s.K / 2) + g * 16;
      for (int j = 0; j < 16; ++j) {
        o[j] = static_cast<float>(b[j] & 15) * sc + of;
        o[j + 16] = static_cast<float>(b[j] >> 4) * sc + of;
      }
    } else {
      const int8_t* q = reinterpret_cast<const int8_t*>(s.q) + n * s.K + g * kGroup;
      for (int j = 0; j < kGroup; ++j) o[j] = static_cast<float>(q[j]) * sc;
    }
  }
}

#if PG_X86
PG_TARGET_AVX512 static void dequant_row_avx512(const QSeg& s, int64_t n, float* out) {
  const int64_t G = s.K / kGroup;
  const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int64_t g = 0; g < G; ++g) {
    const GroupParams p = group_params(s, n, g);
    const __m512 sc = _mm512_set1_ps(p.scale);
    float* o = out + g * kGroup;
    if (s.kind == kInt4) {
      const __m512 of = _mm512_set1_ps(p.offset);
      const __m512 table = _mm512_fmadd_ps(iota, sc, of);
      const __m512i b = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.q + n * (s.K / 2) + g * 16)));
      _mm512_storeu_ps(o, _mm512_permutexvar_ps(b, table));
      _mm512_storeu_ps(o + 16, _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), table));
    } else {
      const uint8_t* q = s.q + n * s.K + g * kGroup;
      const __m512i lo = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
      const __m512i hi = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16)));
      _mm512_storeu_ps(o, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), sc));
      _mm512_storeu_ps(o + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), sc));
    }
  }
}

PG_TARGET_AVX2 static void dequant_row_avx2(const QSeg& s, int64_t n, float* out) {
  const int64_t G = s.K / kGroup;
  const __m256i low4 = _mm256_set1_epi32(15);
  for (int64_t g = 0; g < G; ++g) {
    const GroupParams p = group_params(s, n, g);
    const __m256 sc = _mm256_set1_ps(p.scale);
    float* o = out + g * kGroup;
    if (s.kind == kInt4) {
      const __m256 of = _mm256_set1_ps(p.offset);
      const uint8_t* b = s.q + n * (s.K / 2) + g * 16;
      for (int h = 0; h < 2; ++h) {  // bytes 0..7, then 8..15: low nibbles are q[8h..], high ones q[16 + 8h..]
        const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 8 * h)));
        _mm256_storeu_ps(o + 8 * h, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v, low4)), sc, of));
        _mm256_storeu_ps(o + 16 + 8 * h, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4)), sc, of));
      }
    } else {
      const uint8_t* q = s.q + n * s.K + g * kGroup;
      for (int i = 0; i < 4; ++i) {
        const __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * i)));
        _mm256_storeu_ps(o + 8 * i, _mm256_mul_ps(_mm256_cvtepi32_ps(v), sc));
      }
    }
  }
}

// Straight to bf16 (prefill's GEMM input): int4 converts the group's 16 possible values once and picks each
// weight's with one word permute; rounding as to_bf16's (each value rounded once, to nearest even).
PG_TARGET_BF16 static void dequant_row_bf16_avx512(const QSeg& s, int64_t n, uint16_t* out) {
  const int64_t G = s.K / kGroup;
  const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m256i nib = _mm256_set1_epi16(15);
  for (int64_t g = 0; g < G; ++g) {
    const GroupParams p = group_params(s, n, g);
    const __m512 sc = _mm512_set1_ps(p.scale);
    void* o = out + g * kGroup;
    if (s.kind == kInt4) {
      const __m512 of = _mm512_set1_ps(p.offset);
      const __m512i table = _mm512_castsi256_si512((__m256i)_mm512_cvtneps_pbh(_mm512_fmadd_ps(iota, sc, of)));
      const __m256i b = _mm256_cvtepu8_epi16(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.q + n * (s.K / 2) + g * 16)));
      const __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(b, nib)),
                                             _mm256_srli_epi16(b, 4), 1);
      _mm512_storeu_si512(o, _mm512_permutexvar_epi16(idx, table));
    } else {
      const uint8_t* q = s.q + n * s.K + g * kGroup;
      const __m512 lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)))), sc);
      const __m512 hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16)))), sc);
      _mm512_storeu_si512(o, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
  }
}

PG_TARGET_BF16 static void to_bf16_avx512(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
    _mm512_storeu_si512(reinterpret_cast<void*>(dst + i), (__m512i)v);
  }
  for (; i < n; ++i) dst[i] = bf16_round(src[i]);
}
#endif

void dequant_rows(int isa, const QSeg& s, int64_t n0, int64_t n1, float* dst32, uint16_t* dst16) {
  alignas(64) float row[4096];
  const bool int6 = s.kind == kInt6, int5 = s.kind == kInt5;
  for (int64_t n = n0; n < n1; ++n) {
#if PG_X86
    if (dst16 != nullptr && isa >= kAvx512 && cpu().bf16 && !int5) {
      if (int6) {
        dequant_row_int6_bf16(s, n, dst16 + (n - n0) * s.K);
      } else {
        dequant_row_bf16_avx512(s, n, dst16 + (n - n0) * s.K);
      }
      continue;
    }
#endif
    // bf16 elsewhere: one row at a time through a small fp32 buffer (rows longer than it through a vector).
    float* out = dst16 == nullptr ? dst32 + (n - n0) * s.K : (s.K <= 4096 ? row : nullptr);
    std::vector<float> big;
    if (out == nullptr) {
      big.resize(static_cast<size_t>(s.K));
      out = big.data();
    }
    if (int5) {  // (the AVX2 path: prefill multiplies int5 in integers; this is the tiles' fallback and lookups)
      dequant_row_int5_scalar(s, n, out);
    } else
#if PG_X86
    if (isa >= kAvx512) {
      (int6 ? dequant_row_int6_avx512 : dequant_row_avx512)(s, n, out);
    } else if (isa == kAvx2) {  // prefill's fp32 tiles on AVX2 (scalar: ~20% of a prefill)
      (int6 ? dequant_row_int6_avx2 : dequant_row_avx2)(s, n, out);
    } else
#endif
    {
      (int6 ? dequant_row_int6_scalar : dequant_row_scalar)(s, n, out);
    }
    if (dst16 != nullptr) to_bf16(isa, out, dst16 + (n - n0) * s.K, s.K);
  }
}

void to_bf16(int isa, const float* src, uint16_t* dst, int64_t n) {
#if PG_X86
  if (isa >= kAvx512 && cpu().bf16) return to_bf16_avx512(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_round(src[i]);
}

#if PG_X86
// K-quant parameters as fp32, a super-block (8 groups) a step: a conversion per group through half_to_float made
// the paths that take fp32 copies (AVX2's int8 mode where AVX-VNNI exists, AVX-512 without VNNI) ~5x slower.
PG_TARGET_AVX2 static void kparams_to_floats_avx2(const QSeg& s, int64_t n0, int64_t n1, float* sc, float* of) {
  const int64_t G = s.K / kGroup;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* p = super_at(s, n, 0);
    for (int64_t g = 0; g < G; g += kSuperGroups, p += kSuperBytes) {
      _mm256_storeu_ps(sc + (n - n0) * G + g, codes8(p, super_half(p, 16)));
      if (of) _mm256_storeu_ps(of + (n - n0) * G + g, codes8(p + 8, -super_half(p, 18)));
    }
  }
}
#endif

void params_to_floats(int isa, const QSeg& s, int64_t n0, int64_t n1, float* sc, float* of) {
  const int64_t G = s.K / kGroup, count = (n1 - n0) * G;
#if PG_X86
  if (s.kparams && isa != kScalar) return kparams_to_floats_avx2(s, n0, n1, sc, of);
#endif
  if (s.kparams) {  // K-quant codes: d * sc, -dmin * m
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t g = 0; g < G; ++g) {
        sc[(n - n0) * G + g] = group_scale(s, n, g);
        if (of) of[(n - n0) * G + g] = group_offset(s, n, g);
      }
    return;
  }
  halves_to_floats(isa, s.scales + n0 * G, sc, count);
  if (!of) return;
  if (s.offsets) {
    halves_to_floats(isa, s.offsets + n0 * G, of, count);
  } else {
    const float implied = implied_offset(s.kind);  // symmetric (Q4_0, Q5_0)
    for (int64_t i = 0; i < count; ++i) of[i] = implied * sc[i];
  }
}

}  // namespace pg
