// Decode attention over the KV cache: one chunk of keys for the query heads sharing one kv head (GQA: the keys and
// values are read once for the whole group), as a partial softmax (max, sum, weighted values) that attn_combine
// merges across chunks (flash-decoding), so long contexts split over threads however few kv heads there are.
// SIMD: 8 keys at a time, their dot products with a query reduced together (one reduce8 for 8 scores); exp8.
#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "simd.h"

namespace pg {

namespace {

inline const float* key_row(const AttnArgs& a, int64_t slot, int64_t g, int64_t t, float* buf, int isa) {
  const int64_t off = ((slot * a.n_kv + g) * a.cap + t) * a.hd;
  if (!a.half) return static_cast<const float*>(a.k) + off;
  halves_to_floats(isa, static_cast<const uint16_t*>(a.k) + off, buf, a.hd);
  return buf;
}

inline const float* value_row(const AttnArgs& a, int64_t slot, int64_t g, int64_t t, float* buf, int isa) {
  const int64_t off = ((slot * a.n_kv + g) * a.cap + t) * a.hd;
  if (!a.half) return static_cast<const float*>(a.v) + off;
  halves_to_floats(isa, static_cast<const uint16_t*>(a.v) + off, buf, a.hd);
  return buf;
}

void scores_scalar(const AttnArgs& a, const float* q, int64_t slot, int64_t g, int64_t k0, int64_t k1, float* s,
                   float* buf) {
  for (int64_t t = k0; t < k1; ++t) {
    const float* k = key_row(a, slot, g, t, buf, kScalar);
    float dot = 0.f;
    for (int64_t d = 0; d < a.hd; ++d) dot += q[d] * k[d];
    s[t - k0] = dot * a.scale;
  }
}

#if PG_X86
PG_TARGET_AVX2 void scores_avx2(const AttnArgs& a, const float* q, int64_t slot, int64_t g, int64_t k0,
                                int64_t k1, float* s, float* buf) {
  const int64_t hd = a.hd;
  const __m256 scale = _mm256_set1_ps(a.scale);
  int64_t t = k0;
  for (; t + 8 <= k1; t += 8) {
    __m256 acc[8];
    for (int i = 0; i < 8; ++i) {
      const float* k = key_row(a, slot, g, t + i, buf, kAvx2);
      __m256 r0 = _mm256_setzero_ps(), r1 = _mm256_setzero_ps();
      int64_t d = 0;
      for (; d + 16 <= hd; d += 16) {
        r0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), r0);
        r1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), _mm256_loadu_ps(k + d + 8), r1);
      }
      if (d < hd) r0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), r0);
      acc[i] = _mm256_add_ps(r0, r1);
    }
    _mm256_storeu_ps(s + (t - k0), _mm256_mul_ps(reduce8(acc), scale));
  }
  for (; t < k1; ++t) {
    const float* k = key_row(a, slot, g, t, buf, kAvx2);
    __m256 r = _mm256_setzero_ps();
    for (int64_t d = 0; d < hd; d += 8) r = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), r);
    s[t - k0] = hsum(r) * a.scale;
  }
}

// p = exp(s - m) in place; returns the sum.
PG_TARGET_AVX2 float softmax_avx2(float* s, int64_t n, float m) {
  const __m256 vm = _mm256_set1_ps(m);
  __m256 sum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 p = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
    _mm256_storeu_ps(s + i, p);
    sum = _mm256_add_ps(sum, p);
  }
  float total = hsum(sum);
  for (; i < n; ++i) total += (s[i] = std::exp(s[i] - m));
  return total;
}

PG_TARGET_AVX2 void values_avx2(const float* v, float p, float* acc, int64_t hd) {
  const __m256 vp = _mm256_set1_ps(p);
  for (int64_t d = 0; d < hd; d += 8) {
    _mm256_storeu_ps(acc + d, _mm256_fmadd_ps(vp, _mm256_loadu_ps(v + d), _mm256_loadu_ps(acc + d)));
  }
}
#endif

}  // namespace

void attn_chunk(int isa, const AttnArgs& a, int64_t b, int64_t g, int64_t k0, int64_t k1, float* part,
                float* scores) {
  const int64_t group = a.n_heads / a.n_kv, hd = a.hd, n = k1 - k0, slot = a.slots[b];
  const bool simd = PG_X86 && isa >= kAvx2 && hd % 8 == 0;
  alignas(64) float kbuf[512];  // one key or value row converted from fp16 (hd <= 512)
  for (int64_t j = 0; j < group; ++j) {
    const float* q = a.q + (b * a.n_heads + g * group + j) * hd;
    float* s = scores + j * kAttnChunk;
#if PG_X86
    if (simd) {
      scores_avx2(a, q, slot, g, k0, k1, s, kbuf);
    } else {
      scores_scalar(a, q, slot, g, k0, k1, s, kbuf);
    }
#else
    scores_scalar(a, q, slot, g, k0, k1, s, kbuf);
#endif
    if (a.softcap > 0.f) {
      for (int64_t i = 0; i < n; ++i) s[i] = a.softcap * std::tanh(s[i] / a.softcap);
    }
    float m = -INFINITY;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, s[i]);
    float* pj = part + j * (hd + 2);
    pj[0] = m;
#if PG_X86
    if (simd) {
      pj[1] = softmax_avx2(s, n, m);
      continue;
    }
#endif
    float total = 0.f;
    for (int64_t i = 0; i < n; ++i) total += (s[i] = std::exp(s[i] - m));
    pj[1] = total;
  }
  for (int64_t j = 0; j < group; ++j) std::fill_n(part + j * (hd + 2) + 2, hd, 0.f);
  for (int64_t t = k0; t < k1; ++t) {
    const float* v = value_row(a, slot, g, t, kbuf, simd ? kAvx2 : kScalar);
    for (int64_t j = 0; j < group; ++j) {
      const float p = scores[j * kAttnChunk + (t - k0)];
      float* acc = part + j * (hd + 2) + 2;
#if PG_X86
      if (simd) {
        values_avx2(v, p, acc, hd);
        continue;
      }
#endif
      for (int64_t d = 0; d < hd; ++d) acc[d] += p * v[d];
    }
  }
}

void attn_combine(const AttnArgs& a, int64_t b, int64_t g, const float* parts, int64_t n_chunks) {
  const int64_t group = a.n_heads / a.n_kv, hd = a.hd, stride = group * (hd + 2);
  for (int64_t j = 0; j < group; ++j) {
    float top = -INFINITY;
    for (int64_t c = 0; c < n_chunks; ++c) top = std::max(top, parts[c * stride + j * (hd + 2)]);
    float* out = a.out + (b * a.n_heads + g * group + j) * hd;
    std::fill_n(out, hd, 0.f);
    float total = 0.f;
    for (int64_t c = 0; c < n_chunks; ++c) {
      const float* pj = parts + c * stride + j * (hd + 2);
      const float w = std::exp(pj[0] - top);
      total += w * pj[1];
      for (int64_t d = 0; d < hd; ++d) out[d] += w * pj[2 + d];
    }
    const float inv = 1.f / total;
    for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
  }
}

}  // namespace pg
