// Helpers shared by prefill's integer GEMMs (gemm_avx2.cpp, gemm_avx512.cpp): both repack a block of weight rows
// into panels whose steps hold 4 bytes of each row, and meet them with broadcasts of 4 bytes of an x row.
#pragma once

#include <algorithm>
#include <cstring>

#include "kernels.h"
#include "rows.h"
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

// Row n's group g of an int4 or int5 segment: its values 16c .. 16c + 15 (c 0 or 1) as bytes.
PG_TARGET_AVX2 PG_INLINE __m128i nibble_chunk(const QSeg& s, int64_t n, int64_t g, int c) {
  if (s.kind == kInt5) return int5_chunk(s.q + n * row_bytes(s), g, c, s.k5);
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.q + n * row_bytes(s) + g * 16));
  return _mm_and_si128(c == 0 ? b : _mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F));
}

// 4 bytes of x as one int32 (to broadcast).
PG_INLINE int32_t four_bytes_at(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Rows [n0, n1) of a weight, a block at a time: the block's rows packed into panels of `panel` rows
// (pack(first row, dst), pb bytes each, into scratch), then every max_rows rows of x against each pair of panels:
// run(panel, its partner, t, rows of x, first row, rows to store). An odd last panel pairs with itself; its second
// half is not stored.
template <class Pack, class Run>
PG_INLINE void panel_pairs(int64_t n0, int64_t n1, int64_t block, int64_t panel, int64_t pb, int64_t T,
                           int64_t max_rows, uint8_t* scratch, const Pack& pack, const Run& run) {
  for (int64_t b0 = n0; b0 < n1; b0 += block) {
    const int64_t b1 = std::min(n1, b0 + block), panels = (b1 - b0 + panel - 1) / panel;
    for (int64_t p = 0; p < panels; ++p) pack(b0 + p * panel, scratch + p * pb);
    for (int64_t t = 0; t < T; t += max_rows) {
      for (int64_t p = 0; p < panels; p += 2) {
        const int64_t r = b0 + p * panel;
        run(scratch + p * pb, scratch + std::min(p + 1, panels - 1) * pb, t, std::min(max_rows, T - t), r,
            std::min(2 * panel, b1 - r));
      }
    }
  }
}

// One broadcast of 4 bytes of x.
PG_TARGET_AVX2 PG_INLINE __m256i four_bytes(const void* p) { return _mm256_set1_epi32(four_bytes_at(p)); }

}  // namespace pg
#endif
