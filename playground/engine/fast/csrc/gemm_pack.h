// Helpers shared by prefill's integer GEMMs (gemm_avx2.cpp, gemm_avx512.cpp): both repack a block of weight rows
// into panels whose steps hold 4 bytes of each row, and meet them with broadcasts of 4 bytes of an x row.
#pragma once

#include <cstring>

#include "simd.h"

#if PG_X86
namespace pg {

// Eight rows' 4-int32 chunks h[0..7] as 4 vectors of [row 0..7] at out[0], out[stride], ...: vector j holds each
// row's int32 j (rows 0-3 in the low 128 bits, 4-7 in the high ones).
PG_TARGET_AVX2 PG_INLINE void transpose_8x4(const __m128i* h, __m256i* out, int64_t stride) {
  const __m256i a0 = _mm256_set_m128i(h[4], h[0]), a1 = _mm256_set_m128i(h[5], h[1]);
  const __m256i a2 = _mm256_set_m128i(h[6], h[2]), a3 = _mm256_set_m128i(h[7], h[3]);
  const __m256i t0 = _mm256_unpacklo_epi32(a0, a1), t1 = _mm256_unpackhi_epi32(a0, a1);
  const __m256i t2 = _mm256_unpacklo_epi32(a2, a3), t3 = _mm256_unpackhi_epi32(a2, a3);
  _mm256_storeu_si256(out, _mm256_unpacklo_epi64(t0, t2));
  _mm256_storeu_si256(out + stride, _mm256_unpackhi_epi64(t0, t2));
  _mm256_storeu_si256(out + 2 * stride, _mm256_unpacklo_epi64(t1, t3));
  _mm256_storeu_si256(out + 3 * stride, _mm256_unpackhi_epi64(t1, t3));
}

// 4 bytes of x as one int32 (to broadcast).
PG_INLINE int32_t four_bytes_at(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// One broadcast of 4 bytes of x.
PG_TARGET_AVX2 PG_INLINE __m256i four_bytes(const void* p) { return _mm256_set1_epi32(four_bytes_at(p)); }

}  // namespace pg
#endif
