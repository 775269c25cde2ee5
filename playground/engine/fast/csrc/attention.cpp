// Decode attention over the KV cache: one chunk of keys for the query heads sharing one kv head (GQA: the keys and
// values are read once for the whole group), as a partial softmax (max, sum, weighted values) that attn_combine
// merges across chunks (flash-decoding), so long contexts split over threads however few kv heads there are.
// SIMD: 8 keys at a time, converted once for the group's heads, each head's 8 dot products reduced together (one
// reduce8 for 8 scores); exp8; values 8 rows at a time into register-held slices of each head's sum.
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
PG_TARGET_AVX2 float softmax_avx2(float* s, int64_t n, float m);
#endif

// One head's scores of a chunk, soft-capped where the model caps them, into p = exp(s - max) in place; max and the
// sum of p into its part's header.
void head_softmax(const AttnArgs& a, float* s, int64_t n, float* pj, bool simd) {
  if (a.softcap > 0.f) {
    for (int64_t i = 0; i < n; ++i) s[i] = a.softcap * std::tanh(s[i] / a.softcap);
  }
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, s[i]);
  pj[0] = m;
#if PG_X86
  if (simd) {
    pj[1] = softmax_avx2(s, n, m);
    return;
  }
#endif
  (void)simd;
  float total = 0.f;
  for (int64_t i = 0; i < n; ++i) total += (s[i] = std::exp(s[i] - m));
  pj[1] = total;
}

#if PG_X86
// Up to 8 cache rows from t0 as fp32 rows of hd (fp16 converted here, once for the whole GQA group); rows past n
// are zeros.
PG_TARGET_AVX2 void rows8(const void* base, bool half, int64_t off, int64_t hd, int64_t n, float* dst) {
  for (int64_t i = 0; i < 8; ++i) {
    float* d = dst + i * hd;
    if (i >= n) {
      std::fill_n(d, hd, 0.f);
    } else if (half) {
      const uint16_t* h = static_cast<const uint16_t*>(base) + off + i * hd;
      for (int64_t x = 0; x < hd; x += 8)
        _mm256_storeu_ps(d + x, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + x))));
    } else {
      std::copy_n(static_cast<const float*>(base) + off + i * hd, hd, d);
    }
  }
}

// Scores of the group's heads against 8 keys (fp32 rows kb [8, hd]): s_j[0..8) = q_j . k_i * scale.
PG_TARGET_AVX2 void scores8(const float* q, int64_t group, int64_t hd, const float* kb, float scale, float* s,
                            int64_t stride, int64_t n) {
  const __m256 vs = _mm256_set1_ps(scale);
  for (int64_t j = 0; j < group; ++j) {
    const float* qj = q + j * hd;
    __m256 acc[8];
    for (int i = 0; i < 8; ++i) {
      const float* k = kb + i * hd;
      __m256 r0 = _mm256_setzero_ps(), r1 = _mm256_setzero_ps();
      int64_t d = 0;
      for (; d + 16 <= hd; d += 16) {
        r0 = _mm256_fmadd_ps(_mm256_loadu_ps(qj + d), _mm256_loadu_ps(k + d), r0);
        r1 = _mm256_fmadd_ps(_mm256_loadu_ps(qj + d + 8), _mm256_loadu_ps(k + d + 8), r1);
      }
      if (d < hd) r0 = _mm256_fmadd_ps(_mm256_loadu_ps(qj + d), _mm256_loadu_ps(k + d), r0);
      acc[i] = _mm256_add_ps(r0, r1);
    }
    const __m256 v = _mm256_mul_ps(reduce8(acc), vs);
    if (n == 8) {
      _mm256_storeu_ps(s + j * stride, v);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, v);
      std::copy_n(tmp, n, s + j * stride);
    }
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

// acc_j += sum_i p_j[i] * v_i over 8 value rows (vb [8, hd]; rows past n are zeros, their p never read), each
// 8-float slice of acc_j kept in a register across the 8 rows.
PG_TARGET_AVX2 void values8(const float* p, int64_t stride, int64_t group, const float* vb, int64_t hd, int64_t n,
                            float* part) {
  for (int64_t j = 0; j < group; ++j) {
    __m256 w[8];
    for (int i = 0; i < 8; ++i) w[i] = _mm256_set1_ps(i < n ? p[j * stride + i] : 0.f);
    float* acc = part + j * (hd + 2) + 2;
    for (int64_t d = 0; d < hd; d += 8) {
      __m256 a = _mm256_loadu_ps(acc + d);
      for (int i = 0; i < 8; ++i) a = _mm256_fmadd_ps(w[i], _mm256_loadu_ps(vb + i * hd + d), a);
      _mm256_storeu_ps(acc + d, a);
    }
  }
}

// attn_chunk's SIMD body: keys and values 8 rows at a time, converted once for the group's heads (they were
// converted once per head, and each value row's products stored and reloaded per head).
PG_TARGET_AVX2 void chunk_avx2(const AttnArgs& a, int64_t b, int64_t g, int64_t k0, int64_t k1, float* part,
                               float* scores) {
  const int64_t group = a.n_heads / a.n_kv, hd = a.hd, n = k1 - k0, slot = a.slots[b];
  const int64_t row0 = ((slot * a.n_kv + g) * a.cap) * hd;
  const float* q = a.q + (b * a.n_heads + g * group) * hd;
  alignas(64) float buf[8 * 512];  // 8 rows of keys or values as fp32 (hd <= 512)
  for (int64_t t = k0; t < k1; t += 8) {
    const int64_t m = std::min<int64_t>(8, k1 - t);
    rows8(a.k, a.half, row0 + t * hd, hd, m, buf);
    scores8(q, group, hd, buf, a.scale, scores + (t - k0), kAttnChunk, m);
  }
  for (int64_t j = 0; j < group; ++j) {
    float* pj = part + j * (hd + 2);
    head_softmax(a, scores + j * kAttnChunk, n, pj, true);
    std::fill_n(pj + 2, hd, 0.f);
  }
  for (int64_t t = k0; t < k1; t += 8) {
    const int64_t m = std::min<int64_t>(8, k1 - t);
    rows8(a.v, a.half, row0 + t * hd, hd, m, buf);
    values8(scores + (t - k0), kAttnChunk, group, buf, hd, m, part);
  }
}
#endif

}  // namespace

void attn_chunk(int isa, const AttnArgs& a, int64_t b, int64_t g, int64_t k0, int64_t k1, float* part,
                float* scores) {
  const int64_t group = a.n_heads / a.n_kv, hd = a.hd, n = k1 - k0, slot = a.slots[b];
#if PG_X86
  if (isa >= kAvx2 && hd % 8 == 0) return chunk_avx2(a, b, g, k0, k1, part, scores);
#endif
  alignas(64) float kbuf[512];  // one key or value row converted from fp16 (hd <= 512)
  for (int64_t j = 0; j < group; ++j) {
    const float* q = a.q + (b * a.n_heads + g * group + j) * hd;
    float* s = scores + j * kAttnChunk;
    scores_scalar(a, q, slot, g, k0, k1, s, kbuf);
    head_softmax(a, s, n, part + j * (hd + 2), false);
  }
  for (int64_t j = 0; j < group; ++j) std::fill_n(part + j * (hd + 2) + 2, hd, 0.f);
  for (int64_t t = k0; t < k1; ++t) {
    const float* v = value_row(a, slot, g, t, kbuf, kScalar);
    for (int64_t j = 0; j < group; ++j) {
      const float p = scores[j * kAttnChunk + (t - k0)];
      float* acc = part + j * (hd + 2) + 2;
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
