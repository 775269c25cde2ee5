// CPU detection, fp16 conversion, activation preparation, the gated activation and RMS norm (see kernels.h);
// weight dequantization is dequant.cpp's.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "rows.h"
#include "simd.h"

namespace pg {

const Cpu& cpu() {
  static const Cpu c = [] {
    Cpu r;
#if PG_X86
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");  // F16C comes with these
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    r.isa = avx512 ? kAvx512 : avx2 ? kAvx2 : kScalar;
    r.int8_dot = avx2 ? 1 : 0;
#if PG_HAVE_AVXVNNI
    if (avx2 && __builtin_cpu_supports("avxvnni")) r.int8_dot = 2;
#endif
    if (avx512 && __builtin_cpu_supports("avx512vnni")) r.int8_dot = 3;
#if (!defined(__clang__) && __GNUC__ >= 10) || (defined(__clang__) && __clang_major__ >= 11)
    r.bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
#endif
#endif
    return r;
  }();
  return c;
}

namespace {
std::atomic<int> g_isa_cap{kAvx512};
const char* const kIsaNames[] = {"scalar", "avx2", "avx512"};
}  // namespace

int active_isa() { return std::min(cpu().isa, g_isa_cap.load(std::memory_order_relaxed)); }
void set_isa_cap(int isa) { g_isa_cap.store(isa); }
const char* isa_name(int isa) { return kIsaNames[isa]; }

const char* int8_dot_name(int isa) {
  if (isa == kScalar) return "scalar";
  const int dot = isa == kAvx512 ? cpu().int8_dot : std::min(cpu().int8_dot, 1);
  return dot == 3 ? "avx512-vnni" : dot == 2 ? "avx-vnni" : "avx2";
}

// ---------------------------------------------------------------- fp16 ---------------------------------------------

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400));
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else {
    bits = sign | (exp + 112) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

static uint16_t float_to_half_scalar(float f) {  // round to nearest even
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) return static_cast<uint16_t>(sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0));
  if (abs >= 0x477ff000) return static_cast<uint16_t>(sign | 0x7c00);  // overflow
  if (abs < 0x38800000) {  // subnormal or zero in fp16
    float a;
    std::memcpy(&a, &abs, 4);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.f)));
  }
  const uint32_t mant_odd = (abs >> 13) & 1;
  const uint32_t rounded = abs + 0xfff + mant_odd;
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000) >> 13));
}

#if PG_X86
PG_TARGET_AVX2 static void halves_to_floats_avx2(const uint16_t* s, float* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  }
  for (; i < n; ++i) d[i] = _cvtsh_ss(s[i]);
}

PG_TARGET_AVX2 static void floats_to_halves_avx2(const float* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) d[i] = _cvtss_sh(s[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#endif

void halves_to_floats(int isa, const uint16_t* src, float* dst, int64_t n) {
#if PG_X86
  if (isa >= kAvx2) return halves_to_floats_avx2(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(src[i]);
}

void floats_to_halves(int isa, const float* src, uint16_t* dst, int64_t n) {
#if PG_X86
  if (isa >= kAvx2) return floats_to_halves_avx2(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = float_to_half_scalar(src[i]);
}

// ---------------------------------------------------------------- activations --------------------------------------

static void prepare_x_scalar(XPrep& p) {
  for (int64_t t = 0; t < p.T; ++t) {
    for (int64_t i = 0; i < p.G; ++i) {
      const float* xg = p.x + t * p.K + i * kGroup;
      float s = 0.f, amax = 0.f;
      for (int64_t j = 0; j < kGroup; ++j) {
        s += xg[j];
        amax = std::max(amax, std::fabs(xg[j]));
      }
      p.sumx[t * p.Gp + i] = s;
      if (!p.int8_x) continue;
      const float inv = amax > 0.f ? 127.f / amax : 0.f;
      p.xs[t * p.Gp + i] = amax / 127.f;
      int32_t q = 0;
      for (int64_t j = 0; j < kGroup; ++j) {
        p.xq[t * p.K + i * kGroup + j] = static_cast<int8_t>(std::nearbyint(xg[j] * inv));
        q += p.xq[t * p.K + i * kGroup + j];
      }
      if (p.sumq) p.sumq[t * p.Gp + i] = static_cast<float>(q) * p.xs[t * p.Gp + i];
      if (p.qsum) p.qsum[t * p.Gp + i] = q;
    }
  }
}

#if PG_X86
PG_TARGET_AVX2 static void prepare_x_avx2(XPrep& p) {
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t t = 0; t < p.T; ++t) {
    for (int64_t i = 0; i < p.G; ++i) {
      const float* xg = p.x + t * p.K + i * kGroup;
      const __m256 v[4] = {_mm256_loadu_ps(xg), _mm256_loadu_ps(xg + 8), _mm256_loadu_ps(xg + 16),
                           _mm256_loadu_ps(xg + 24)};
      p.sumx[t * p.Gp + i] = hsum(_mm256_add_ps(_mm256_add_ps(v[0], v[1]), _mm256_add_ps(v[2], v[3])));
      if (!p.int8_x) continue;
      const RoundedGroup r = round_group(v, 127.f);
      p.xs[t * p.Gp + i] = r.scale;
      const __m256i w01 = _mm256_packs_epi32(r.q[0], r.q[1]), w23 = _mm256_packs_epi32(r.q[2], r.q[3]);
      const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p.xq + t * p.K + i * kGroup), b);
      if (p.sumq) p.sumq[t * p.Gp + i] = static_cast<float>(r.sum) * r.scale;
      if (p.qsum) p.qsum[t * p.Gp + i] = r.sum;
    }
  }
}
#endif

// ---------------------------------------------------------------- gated activation ---------------------------------

static inline float silu_scalar(float x) { return x / (1.f + std::exp(-x)); }
static inline float gelu_tanh_scalar(float x) {
  const float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.f + std::tanh(inner));
}

#if PG_X86
// GELU-tanh as g * sigmoid(2z), the same function as 0.5 g (1 + tanh(z)) without its cancellation where tanh(z) is
// near -1 (negative g: there 1 - 2 / (1 + exp(2z)) kept only the leading digits); exp8 saturates, so large |z| is
// fine.
PG_TARGET_AVX2 static void gated_activation_avx2(int act, const float* gu, int64_t inter, float* out) {
  const __m256 one = _mm256_set1_ps(1.f), minus_two = _mm256_set1_ps(-2.f);
  int64_t j = 0;
  for (; j + 8 <= inter; j += 8) {
    const __m256 g = _mm256_loadu_ps(gu + j), u = _mm256_loadu_ps(gu + inter + j);
    __m256 a;
    if (act == 0) {
      a = _mm256_div_ps(g, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
    } else {
      const __m256 inner = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                                         _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), g),
                                                         _mm256_mul_ps(g, g), g));
      a = _mm256_div_ps(g, _mm256_add_ps(one, exp8(_mm256_mul_ps(minus_two, inner))));
    }
    _mm256_storeu_ps(out + j, _mm256_mul_ps(a, u));
  }
  for (; j < inter; ++j) out[j] = (act == 0 ? silu_scalar(gu[j]) : gelu_tanh_scalar(gu[j])) * gu[inter + j];
}
#endif

void gated_activation(int isa, int act, const float* gu, int64_t inter, float* out) {
#if PG_X86
  if (isa >= kAvx2) return gated_activation_avx2(act, gu, inter, out);
#endif
  for (int64_t j = 0; j < inter; ++j) out[j] = (act == 0 ? silu_scalar(gu[j]) : gelu_tanh_scalar(gu[j])) * gu[inter + j];
}

#if PG_X86
PG_TARGET_AVX2 static void rms_norm_row_avx2(float* x, const float* res, const float* w, float* out, int64_t n,
                                             float eps) {
  __m256 ss = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    if (res) {
      v = _mm256_add_ps(v, _mm256_loadu_ps(res + i));
      _mm256_storeu_ps(x + i, v);
    }
    ss = _mm256_fmadd_ps(v, v, ss);
  }
  float tail = 0.f;
  for (; i < n; ++i) {
    if (res) x[i] += res[i];
    tail += x[i] * x[i];
  }
  const float r = 1.f / std::sqrt((hsum(ss) + tail) / static_cast<float>(n) + eps);
  const __m256 rv = _mm256_set1_ps(r);
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), rv), _mm256_loadu_ps(w + i)));
  for (; i < n; ++i) out[i] = x[i] * r * w[i];
}
#endif

void rms_norm_row(int isa, float* x, const float* res, const float* w, float* out, int64_t n, float eps) {
#if PG_X86
  if (isa >= kAvx2) return rms_norm_row_avx2(x, res, w, out, n, eps);
#endif
  float ss = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    if (res) x[i] += res[i];
    ss += x[i] * x[i];
  }
  const float r = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * r * w[i];
}

// Quad order (see XPrep::xq4) from x's order: per 4 groups, their bytes 0..15 side by side, then their bytes 16..31.
static void interleave_quads(const int8_t* src_all, int8_t* dst_all, const XPrep& p) {
  const int64_t whole = p.G / 4 * 4;
  for (int64_t t = 0; t < p.T; ++t) {
    const int8_t* src = src_all + t * p.K;
    int8_t* dst = dst_all + t * p.K;
    for (int64_t g = 0; g < whole; g += 4) {
      for (int64_t i = 0; i < 4; ++i) {
        std::memcpy(dst + g * kGroup + i * 16, src + (g + i) * kGroup, 16);
        std::memcpy(dst + g * kGroup + 64 + i * 16, src + (g + i) * kGroup + 16, 16);
      }
    }
    std::memcpy(dst + whole * kGroup, src + whole * kGroup, (p.G - whole) * kGroup);
  }
}

// The int6 constant of group g's half h (see XPrep::c6) in row t's array: -32 * half_sum * scale (and the scale
// itself in xs6, where the AVX2 kernel takes it).
static inline void set_c6(const XPrep& p, int64_t t, int64_t g, int h, int32_t half_sum, float scale) {
  const int64_t at = t * (p.K / 16) + int6_scale_at(g, h);
  p.c6[at] = -32.f * static_cast<float>(half_sum) * scale;
  if (p.xs6) p.xs6[at] = scale;
}

// The constant terms of row t's group g (see kernels.h) from the sums of its two halves of x as rounded (x16 or xq)
// and its scale: -8 (symmetric int4, c4) or -128 (int8 weights: c8 in the int8 mode, c16n in the fp32 one) times the
// group's sum, -32 (int6, c6) times each half's.
static void set_consts(const XPrep& p, int64_t t, int64_t g, const int32_t (&half)[2], float scale) {
  const int32_t sum = half[0] + half[1];
  if (p.c4) p.c4[t * c_stride(p.G, 4) + g * 4] = -8 * sum;
  int32_t* c2 = p.int8_x ? p.c8 : p.c16n;
  if (c2) c2[t * c_stride(p.G, 2) + g * 8] = -128 * sum;
  if (p.c6) {
    set_c6(p, t, g, 0, half[0], scale);
    set_c6(p, t, g, 1, half[1], scale);
  }
}

// The constants of int8 x (prepare_split_avx512 sets the fp32 mode's).
static void prepare_int8_consts(XPrep& p) {
  for (int64_t t = 0; t < p.T; ++t) {
    for (int64_t g = 0; g < p.G; ++g) {
      int32_t half[2] = {0, 0};
      for (int64_t j = 0; j < kGroup; ++j) half[j / 16] += p.xq[t * p.K + g * kGroup + j];
      set_consts(p, t, g, half, p.xs[t * p.Gp + g]);
    }
  }
}

#if PG_X86
// xh / xl / xs16 / c4 / c16n / c6 (see kernels.h), only ever set for the AVX512-VNNI kernels (quad_kernel), so only in
// AVX-512. vcvtps2dq rounds half to even (the default MXCSR mode), like torch.round in
// quantize_activations(bits=16). lo = ((x16 + 128) mod 256) - 128 and hi = (x16 - lo) / 256 are exact.
PG_TARGET_AVX512 static void prepare_split_avx512(XPrep& p) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512i b128 = _mm512_set1_epi32(128), b255 = _mm512_set1_epi32(255);
  for (int64_t t = 0; t < p.T; ++t) {
    const float* x = p.x + t * p.K;
    for (int64_t g = 0; g < p.G; ++g) {
      const __m512 v0 = _mm512_loadu_ps(x + g * kGroup), v1 = _mm512_loadu_ps(x + g * kGroup + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(v0, abs_mask), _mm512_and_ps(v1, abs_mask)));
      const float inv = amax > 0.f ? kInt16Levels / amax : 0.f;
      p.xs16[t * p.Gp + g] = amax / kInt16Levels;
      const __m512i i[2] = {_mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(inv))),
                            _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(inv)))};
      const int32_t half[2] = {_mm512_reduce_add_epi32(i[0]), _mm512_reduce_add_epi32(i[1])};
      set_consts(p, t, g, half, p.xs16[t * p.Gp + g]);
      for (int h = 0; h < 2; ++h) {
        const __m512i lo = _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(i[h], b128), b255), b128);
        const __m512i hi = _mm512_srai_epi32(_mm512_sub_epi32(i[h], lo), 8);
        const int64_t at = t * p.K + g * kGroup + h * 16;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p.xh + at), _mm512_cvtepi32_epi8(hi));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p.xl + at), _mm512_cvtepi32_epi8(lo));
      }
    }
  }
  if (p.xh4) {
    interleave_quads(p.xh, p.xh4, p);
    interleave_quads(p.xl, p.xl4, p);
  }
}
#endif

#if PG_X86
// prepare_split_avx512's rounding for the AVX2 kernels, as int16 in XPrep::x16p's pair order (no constants: the
// kernels take the stored offsets in fp32; sumq: x's group sums as rounded, for Q4_0's implied offsets). The int8
// mode rounds to int8 as prepare_x_avx2 does (the same values, held as int16): the int16 kernels then make the
// int8 kernels' integer sums, faster (Qwen2.5-3B's int4-a8 decode 7.9-8.4 -> 9.8-11.2 tok/s on a 2-core Zen 3,
// alternating processes; the int8 kernel's nibble unpacking and per-group scaling cost more than widening). Int4
// weights in the int8 mode then moved on to the same values as bytes (x8p, written here too: int4_rows_x8_avx2).
PG_TARGET_AVX2 static void prepare_x16_avx2(XPrep& p) {
  const float levels = p.int8_x ? 127.f : kInt16Levels;
  const int64_t row = (p.G + 1) / 2 * 2 * kGroup;
  const __m256i evens_then_odds = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,  //
                                                   0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  for (int64_t t = 0; t < p.T; ++t) {
    for (int64_t g = 0; g < p.G; ++g) {
      const float* xg = p.x + t * p.K + g * kGroup;
      __m256 v[4];
      for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(xg + 8 * i);
      const RoundedGroup r = round_group(v, levels);
      p.xs16[t * p.Gp + g] = r.scale;
      const int64_t pair = t * row + g / 2 * 2 * kGroup;
      for (int h = 0; h < 2; ++h) {  // values 16h .. 16h + 15 as int16, in order
        const __m256i v = _mm256_permute4x64_epi64(_mm256_packs_epi32(r.q[2 * h], r.q[2 * h + 1]), 0xD8);
        if (p.x16p) {  // the evens to chunk h, the odds to chunk 2 + h
          int16_t* dst = p.x16p + pair + g % 2 * 8;
          const __m256i eo = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, evens_then_odds), 0xD8);
          _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16 * h), _mm256_castsi256_si128(eo));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16 * (2 + h)), _mm256_extracti128_si256(eo, 1));
        }
        if (p.x8p) {  // as bytes (the int8 mode's values, within +-127: no saturation) to chunk h
          _mm_storeu_si128(reinterpret_cast<__m128i*>(p.x8p + pair + g % 2 * 16 + 32 * h),
                           _mm_packs_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
        }
      }
      if (p.sumq) p.sumq[t * p.Gp + g] = static_cast<float>(r.sum) * r.scale;
      if (p.c6) {  // int6 weights: their -32 offsets' term per half group
        set_c6(p, t, g, 0, hsum_epi32(_mm256_add_epi32(r.q[0], r.q[1])), r.scale);
        set_c6(p, t, g, 1, hsum_epi32(_mm256_add_epi32(r.q[2], r.q[3])), r.scale);
      }
    }
  }
}
#endif

void prepare_x(int isa, XPrep& p) {
#if PG_X86
  if (!p.int8_x && p.xh) prepare_split_avx512(p);
  if (p.x16p || p.x8p) prepare_x16_avx2(p);
  if (isa >= kAvx2) {
    prepare_x_avx2(p);
  } else {
    prepare_x_scalar(p);
  }
#else
  prepare_x_scalar(p);
#endif
  if (p.int8_x && p.xq4) interleave_quads(p.xq, p.xq4, p);
  if (p.int8_x && !p.x16p && !p.x8p && (p.c8 || p.c4 || p.c6)) prepare_int8_consts(p);  // (x16p, x8p: above)
}

}  // namespace pg
