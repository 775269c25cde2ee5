// SIMD helpers shared by the kernel files (x86-64 with GCC/Clang; other builds take the scalar paths only).
// The library is compiled without -march flags: SIMD functions carry target attributes and are picked at run time,
// so it loads on any x86-64.
#pragma once

#include <cstdint>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PG_X86 1
#define PG_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define PG_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define PG_TARGET_VNNI512 __attribute__((target("avx512vnni,avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define PG_TARGET_BF16 __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#if (defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11)
#define PG_HAVE_AVXVNNI 1
#define PG_TARGET_AVXVNNI __attribute__((target("avxvnni,avx2,fma,f16c")))
#else
#define PG_HAVE_AVXVNNI 0
#endif
#define PG_INLINE inline __attribute__((always_inline))

namespace pg {

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

PG_TARGET_AVX2 PG_INLINE int32_t hsum_epi32(__m256i v) {
  const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i h2 = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(h2, _mm_shuffle_epi32(h2, 0xB1)));
}

// A group of 32 activations v[0..3] rounded per group to integers of at most `levels` (the kernels' int8 and int16
// x): q = round(x * levels / max|x|), vcvtps2dq rounding half to even as torch.round does; scale = max|x| / levels,
// sum = the sum of q.
struct RoundedGroup {
  __m256i q[4];
  float scale;
  int32_t sum;
};

PG_TARGET_AVX2 PG_INLINE RoundedGroup round_group(const __m256 (&v)[4], float levels) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                                 _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
  const float amax = hmax(m);
  const __m256 inv = _mm256_set1_ps(amax > 0.f ? levels / amax : 0.f);
  RoundedGroup r;
  r.scale = amax / levels;
  __m256i total = _mm256_setzero_si256();
  for (int i = 0; i < 4; ++i) {
    r.q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], inv));
    total = _mm256_add_epi32(total, r.q[i]);
  }
  r.sum = hsum_epi32(total);
  return r;
}

// The lane sums of r[0..7] as one vector: [sum(r[0]), ..., sum(r[7])].
PG_TARGET_AVX2 PG_INLINE __m256 reduce8(const __m256* r) {
  const __m256 h01 = _mm256_hadd_ps(_mm256_hadd_ps(r[0], r[1]), _mm256_hadd_ps(r[2], r[3]));
  const __m256 h45 = _mm256_hadd_ps(_mm256_hadd_ps(r[4], r[5]), _mm256_hadd_ps(r[6], r[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(h01, h45, 0x20), _mm256_permute2f128_ps(h01, h45, 0x31));
}

// acc + a[i] * b[i] over i < n (a multiple of 8), lane-wise
PG_TARGET_AVX2 PG_INLINE __m256 dot8(__m256 acc, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  return acc;
}

// exp(x) for 8 lanes (Cephes-style: 2^n * p(r), |relative error| < 2e-7; x below -87 gives 0).
PG_TARGET_AVX2 PG_INLINE __m256 exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365478515625f);
  x = _mm256_min_ps(x, hi);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(x, lo);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

}  // namespace pg

#else
#define PG_X86 0
#define PG_HAVE_AVXVNNI 0
#endif
