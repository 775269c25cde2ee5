// Internals shared by int4_rows.cpp and int8_rows.cpp: one pass over a block of weight rows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels.h"
#include "prefetch.h"
#include "simd.h"

namespace pg {

constexpr int64_t kRowBlock = 32;         // weight rows per block (kept hot while the T-chunks loop over it)

struct Args {
  const QSeg* s;
  const XPrep* x;
  float* out;  // column 0 of the segment in row 0 of the output
  int64_t ldo;
  int64_t prefetch_rows;
};

// One block of rows: their scales (and int4 offsets) in fp32 ([rows, G] each, then 8 zeros: the SIMD loops over a
// row's groups read up to Gp, the padded lanes being multiplied by the zero pad of sumx / xs), and scratch. Null
// for the kernels that read the fp16 params themselves (int4_reads_halves / int8_reads_halves).
struct Block {
  const float* sc;
  const float* of;
  float* scratch;  // [kMaxT, Gp]
  int64_t n0;
};

#define PG_DISPATCH_T(FN, tn, ...)           \
  switch (tn) {                              \
    case 1: FN<1>(__VA_ARGS__); break;       \
    case 2: FN<2>(__VA_ARGS__); break;       \
    case 3: FN<3>(__VA_ARGS__); break;       \
    case 4: FN<4>(__VA_ARGS__); break;       \
    case 5: FN<5>(__VA_ARGS__); break;       \
    case 6: FN<6>(__VA_ARGS__); break;       \
    case 7: FN<7>(__VA_ARGS__); break;       \
    default: FN<8>(__VA_ARGS__); break;      \
  }

void nibble_rows_scalar(const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1);  // int4, int5
void int8_rows_scalar(const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1);
// int6 (int6_rows.cpp): blk.scratch holds K floats (a dequantized row) for the scalar path.
void int6_rows_scalar(const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1);
void dequant_row_int6_scalar(const QSeg& s, int64_t n, float* out);

#if PG_X86
void int4_rows_simd(int isa, const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1);
void int8_rows_simd(int isa, const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1);
// The int6 kernels (AVX512-VNNI; AVX2 with x16p), for x prepared with c6 (int6_simd).
void int6_rows_simd(const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1);
bool int6_simd(const XPrep& xp);
void dequant_row_int6_avx512(const QSeg& s, int64_t n, float* out);
void dequant_row_int6_avx2(const QSeg& s, int64_t n, float* out);
void dequant_row_int6_bf16(const QSeg& s, int64_t n, uint16_t* out);
// The int5 kernels: AVX2's for x prepared with x16p (fp32 mode) or x8p (int8 mode), AVX512-VNNI's for x in the
// quad order (xq4, or xh4 / xl4): int5_simd.
void int5_rows_simd(const Args& a, const Block& blk, int64_t t0, int64_t tn, int64_t n1);
bool int5_simd(int isa, const QSeg& s, const XPrep& xp);

// Group g of an int5 row: its values 16c .. 16c + 15 (0..31) as bytes (k5: QSeg::k5's layout, where they are
// nibble v = g % 2 of the pair's bytes 16c..16c + 15, not nibble c of the group's own 16 bytes).
PG_TARGET_AVX2 PG_INLINE __m128i int5_chunk(const uint8_t* row, int64_t g, int c, bool k5 = false) {
  const uint8_t* quad = row + g / 8 * int5_quad_bytes(k5);
  const int64_t at_byte = k5 ? g % 8 / 2 * 32 + 16 * c : g % 8 * 16, fifth_byte = k5 ? 16 * c : g % 2 * 16;
  const int nibble = k5 ? static_cast<int>(g % 2) : c;
  const __m128i nib = _mm_loadu_si128(reinterpret_cast<const __m128i*>(quad + 32 + at_byte));
  const __m128i fifth = _mm_loadu_si128(reinterpret_cast<const __m128i*>(quad + fifth_byte));
  const int at = static_cast<int>(g % 8 / 2 * 2 + nibble);  // the bit of each fifth-bit byte, moved to bit 4
  const __m128i top = at <= 4 ? _mm_sll_epi16(fifth, _mm_cvtsi32_si128(4 - at))
                              : _mm_srl_epi16(fifth, _mm_cvtsi32_si128(at - 4));
  const __m128i low = _mm_and_si128(nibble == 0 ? nib : _mm_srli_epi16(nib, 4), _mm_set1_epi8(0x0F));
  return _mm_or_si128(low, _mm_and_si128(top, _mm_set1_epi8(0x10)));
}


// A K-quant super-block's fp16 d (at 16) or dmin (at 18; int6's d: at 16) as fp32.
PG_TARGET_AVX2 PG_INLINE float super_half(const uint8_t* p, int at) {
  uint16_t h;
  std::memcpy(&h, p + at, 2);
  return _cvtsh_ss(h);
}

// Row n's group g of int6 weights (kernels.h): its values 16h .. 16h + 15 (h the half group; 0..63) as bytes
// (prefill's panels, AVX512-VNNI and AVX2).
PG_TARGET_AVX2 PG_INLINE __m128i int6_bytes(const QSeg& s, int64_t n, int64_t g, int h) {
  const int64_t quad = g % 8 / 4, i = g % 4;
  const uint8_t* blk = s.q + n * row_bytes(s) + g / 8 * 192;
  const __m128i nib = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 64 * quad + 16 * i));
  const __m128i pairs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 128 + 16 * i));
  const int shift = static_cast<int>(4 * quad + 2 * h);  // low nibbles (k < 16): bits 0-1 of the quad's pair
  const __m128i low = _mm_and_si128(h == 0 ? nib : _mm_srli_epi16(nib, 4), _mm_set1_epi8(0x0F));
  const __m128i top = _mm_and_si128(_mm_srl_epi16(pairs, _mm_cvtsi32_si128(shift)), _mm_set1_epi8(0x03));
  return _mm_or_si128(low, _mm_slli_epi16(top, 4));  // no bit crosses a byte
}

// The same values less 32 as int16, k 8c .. 8c + 7 (the AVX2 dequantization).
PG_TARGET_AVX2 PG_INLINE __m128i int6_chunk(const QSeg& s, int64_t n, int64_t g, int c) {
  const __m128i q = int6_bytes(s, n, g, c / 2);
  return _mm_sub_epi16(_mm_cvtepu8_epi16(c % 2 ? _mm_srli_si128(q, 8) : q), _mm_set1_epi16(32));
}

// Row n's scale of half h of group g of int6 weights, fp32 (0 at or past N: a last panel's padding).
PG_TARGET_AVX2 PG_INLINE float int6_half_scale(const QSeg& s, int64_t n, int64_t g, int64_t h) {
  if (n >= s.N) return 0.f;
  const uint8_t* p = int6_params(s, n, g / 8);
  return super_half(p, 16) * static_cast<float>(static_cast<int8_t>(p[int6_scale_at(g, h) % 16]));
}

// Row n's group g of an int4, int5 or int8 segment: its scale and offset (implied ones included; int8: unused),
// zeros for rows at or past N (a last panel's padding). fp16 through F16C inline: group_scale's plain conversion,
// called per row and group, was ~3% of a prefill.
struct GroupParams {
  float scale, offset;
};
PG_TARGET_AVX2 PG_INLINE GroupParams group_params(const QSeg& s, int64_t n, int64_t g) {
  if (n >= s.N) return {0.f, 0.f};
  if (s.kparams) {
    const uint8_t* p = super_at(s, n, g);
    return {super_half(p, 16) * static_cast<float>(p[g % kSuperGroups]),
            -super_half(p, 18) * static_cast<float>(p[8 + g % kSuperGroups])};
  }
  const int64_t at = n * (s.K / kGroup) + g;
  const float scale = _cvtsh_ss(s.scales[at]);
  return {scale, s.offsets ? _cvtsh_ss(s.offsets[at]) : implied_offset(s.kind) * scale};
}

// A block's 8 int6 scales from i0 (int6_params' p) as fp32 times d (the block's d, broadcast: read once a block).
PG_TARGET_AVX2 PG_INLINE __m256 int6_scales8(const uint8_t* p, int i0, __m256 d) {
  const __m256 codes = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + i0))));
  return _mm256_mul_ps(codes, d);
}

// Rows [r0, r0 + rows) of an int4, int5 or int6 segment (rows <= 16): their parameters by group, as group_params /
// int6_half_scale give them, scale and offset [G][16] (int6: its half groups' scales [2G][16]; symmetric weights:
// no offsets), rows past `rows` zeros (gemm_small.cpp). The VNNI GEMM's panels and its short form read them so.
void params16(const QSeg& s, int64_t r0, int64_t rows, int64_t G, float* scale, float* offset);

// All 16 of a block's int6 scales (int6_params' p) as fp32: its int8 sub-scales times d, int6_scale_at's order.
PG_TARGET_VNNI512 PG_INLINE __m512 int6_scales16(const uint8_t* p) {
  const __m512 codes = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  return _mm512_mul_ps(codes, _mm512_set1_ps(super_half(p, 16)));
}

// Row n's fp16 params (scales or offsets): a 16-group block from g16, masked past the row's G groups, as fp32.
// The AVX512-VNNI kernels read them this way, next to the weights: a per-block fp32 copy cost a pass over them
// that stalled on DRAM (12% of a Llama-3.2-1B decode step).
PG_TARGET_VNNI512 PG_INLINE __m512 halves16(const uint16_t* params, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, params));
}

// 8 codes (bytes) as fp32 times f.
PG_TARGET_AVX2 PG_INLINE __m256 codes8(const uint8_t* p, float f) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))),
                       _mm256_set1_ps(f));
}

// Row n's scales of groups [g16, g16 + 16) as fp32, lanes past the mask zero: fp16 (halves16) or K-quant codes
// times d (two super-blocks; the second read only where the mask reaches it).
PG_TARGET_VNNI512 PG_INLINE __m512 scales16(const QSeg& s, int64_t n, int64_t G, int64_t g16, __mmask16 m) {
  if (!s.kparams) return halves16(s.scales + n * G + g16, m);
  const uint8_t* p = super_at(s, n, g16);
  const bool two = (m >> 8) != 0;
  const __m256 lo = codes8(p, super_half(p, 16));
  const __m256 hi = two ? codes8(p + kSuperBytes, super_half(p + kSuperBytes, 16)) : _mm256_setzero_ps();
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}

// acc + the offsets of row n (K-quant: -dmin * m) times x's group sums sx, over its G groups (a multiple of 8).
PG_TARGET_AVX2 PG_INLINE __m256 super_offsets_dot8(__m256 acc, const QSeg& s, int64_t n, const float* sx, int64_t G) {
  const uint8_t* p = super_at(s, n, 0);
  for (int64_t i = 0; i < G; i += kSuperGroups, p += kSuperBytes)
    acc = _mm256_fmadd_ps(codes8(p + 8, -super_half(p, 18)), _mm256_loadu_ps(sx + i), acc);
  return acc;
}

PG_INLINE __mmask16 groups_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
}

// acc + of[i] * sumx[i] over i < G (fp16 of, read masked; sumx zero-padded to 8).
PG_TARGET_VNNI512 PG_INLINE __m256 dot_halves8(__m256 acc, const uint16_t* of, const float* sumx, int64_t G) {
  for (int64_t i = 0; i < G; i += 8) {
    const __mmask8 m = G - i >= 8 ? __mmask8(0xFF) : __mmask8((1u << (G - i)) - 1);
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_maskz_loadu_epi16(m, of + i)), _mm256_loadu_ps(sumx + i), acc);
  }
  return acc;
}

// 8 fp16 params from p as fp32 (the last ones of a row: only ``left`` < 8 read, the rest zero). The tail is a
// masked load of the whole 32-bit words, an odd last one broadcast into its lane: copying the tail through a small
// array stalled on store-to-load forwarding, twice a row (Qwen2.5-0.5B's 4864 x 896 gemv: 15.5 -> 20 GB/s without).
// Nothing past p[left - 1] is read (the last row's params may end a mapping).
PG_TARGET_AVX2 PG_INLINE __m256 halves8(const uint16_t* p, int64_t left) {
  if (left >= 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  alignas(16) static const int16_t ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  const __m128i words = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ones + 8 - (left & ~int64_t{1})));
  __m128i v = _mm_maskload_epi32(reinterpret_cast<const int*>(p), words);
  if (left & 1) {
    const __m128i lane = _mm_andnot_si128(words, _mm_loadu_si128(reinterpret_cast<const __m128i*>(ones + 8 - left)));
    v = _mm_or_si128(v, _mm_and_si128(lane, _mm_set1_epi16(static_cast<int16_t>(p[left - 1]))));
  }
  return _mm256_cvtph_ps(v);
}

// d [TT, Gp] = a row's fp16 scales times x's int16 scales (xs16 from row t0), zero past G: the AVX2 int16 kernels'
// per-group factors; and per row of x the offsets' term, summed in the same pass over the row's params: Q4_0's
// implied -8 * scale (``symmetric``: scale * sumq summed, the -8 applied by the caller) or stored offsets (``of``:
// of * x's group sums as the mode rounds them, offset_sums).
// The sums run in locals, returned once: summed through a pointer that the stores to d might alias, each step
// reloaded what the last had stored, a chain that cost ~20% of Qwen2.5-3B's Q4_0 decode on a Zen 3 (perf); the
// stored offsets had their own pass after the row's pairs.
// K-quant rows (QSeg::kparams) count as stored offsets (-dmin * m), 8 groups (a super-block) a step.
template <int TT>
PG_TARGET_AVX2 PG_INLINE void scales_times_x16(const QSeg& s, int64_t n, const XPrep& xp, int64_t t0, float* d,
                                               __m256 (&term)[TT]) {
  const int64_t G = xp.G;
  const bool stored = nibble_kind(s.kind) && !symmetric(s), implied = nibble_kind(s.kind) && symmetric(s);
  const uint16_t* sc = s.kparams ? nullptr : s.scales + n * G;
  const uint16_t* of = s.offsets ? s.offsets + n * G : nullptr;
  const uint8_t* kp = s.kparams ? super_at(s, n, 0) : nullptr;
  const float* sums = stored ? offset_sums(xp) : xp.sumq;
  for (int t = 0; t < TT; ++t) term[t] = _mm256_setzero_ps();
  for (int64_t g = 0; g < xp.Gp; g += 8) {
    const uint8_t* p = kp ? kp + g / kSuperGroups * kSuperBytes : nullptr;
    const __m256 s8 = p ? codes8(p, super_half(p, 16)) : halves8(sc + g, G - g);
    const __m256 o8 = p ? codes8(p + 8, -super_half(p, 18)) : of ? halves8(of + g, G - g) : s8;
    for (int t = 0; t < TT; ++t) {
      _mm256_storeu_ps(d + t * xp.Gp + g, _mm256_mul_ps(s8, _mm256_loadu_ps(xp.xs16 + (t0 + t) * xp.Gp + g)));
      if (stored || implied) term[t] = _mm256_fmadd_ps(o8, _mm256_loadu_ps(sums + (t0 + t) * xp.Gp + g), term[t]);
    }
  }
}

// One pair of groups (p) of the AVX2 int16 kernels: weights q0..q3 widened to int16 in XPrep::x16p's order, against
// each row of x; lanes 0-3 are group 2p's sums, 4-7 group 2p+1's, scaled by d (scales_times_x16) into acc.
// pair_rows keeps one accumulator set per pair parity, each its own array: one array indexed by the parity at run
// time stayed in memory, and the FMA's store-and-reload chain bounded the loop.
template <int TT>
PG_TARGET_AVX2 PG_INLINE void x16_pair(__m256 (&acc)[TT], __m256i q0, __m256i q1, __m256i q2, __m256i q3,
                                       const int16_t* x16, int64_t stride, const float* d, int64_t Gp, int64_t p) {
  const __m256i pick = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  for (int t = 0; t < TT; ++t) {
    const __m256i* xv = reinterpret_cast<const __m256i*>(x16 + t * stride + p * 64);
    const __m256i s01 = _mm256_add_epi32(_mm256_madd_epi16(q0, _mm256_loadu_si256(xv)),
                                         _mm256_madd_epi16(q1, _mm256_loadu_si256(xv + 1)));
    const __m256i s23 = _mm256_add_epi32(_mm256_madd_epi16(q2, _mm256_loadu_si256(xv + 2)),
                                         _mm256_madd_epi16(q3, _mm256_loadu_si256(xv + 3)));
    const __m256i s = _mm256_add_epi32(s01, s23);
    const __m128 d2 = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(d + t * Gp + 2 * p)));
    const __m256 dv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d2), pick);
    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), dv, acc[t]);
  }
}

// One pair of groups (p) of the AVX2 byte kernels: weights as bytes, lo (each group's q[0..15]) and hi (q[16..31]),
// unsigned and at most 31, against x's bytes (XPrep::x8p) in vpmaddubsw (a pair of products is at most 2 * 31 * 127,
// the two vectors' sums at most twice that: no saturation), one vpmaddwd by ones to int32; lanes 0-3 are group 2p's
// sums, 4-7 group 2p+1's, scaled by d (scales_times_x16) into acc.
template <int TT>
PG_TARGET_AVX2 PG_INLINE void x8_pair(__m256 (&acc)[TT], __m256i lo, __m256i hi, const int8_t* x8, int64_t stride,
                                      const float* d, int64_t Gp, int64_t p) {
  const __m256i pick = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  for (int t = 0; t < TT; ++t) {
    const __m256i* xv = reinterpret_cast<const __m256i*>(x8 + t * stride + p * 64);
    const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256(xv)),
                                         _mm256_maddubs_epi16(hi, _mm256_loadu_si256(xv + 1)));
    const __m256i s = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
    const __m128 d2 = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(d + t * Gp + 2 * p)));
    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d2), pick),
                             acc[t]);
  }
}

// Whether seg_rows' kernel for these weights and x reads the fp16 params itself (halves16), so no fp32 copy is
// made: the AVX512-VNNI kernels (int4: int16 x pairs, int8 x quads; int8 weights: int16 x), and AVX2's int16 x
// (int4_rows_x16_avx2).
bool int4_reads_halves(int isa, const XPrep& xp);
bool int8_reads_halves(const XPrep& xp);

// Rows finish into pending[t][i] (8 lanes still to be summed); every 8 rows one reduce8 per t writes 8 outputs.
template <int TT>
struct Pending {
  __m256 r[TT][8];
  int count = 0;
  int64_t first = 0;
};

template <int TT>
PG_TARGET_AVX2 PG_INLINE void flush(Pending<TT>& p, const Args& a, int64_t t0) {
  for (int t = 0; t < TT; ++t) {
    float* out = a.out + (t0 + t) * a.ldo + p.first;
    const __m256 v = reduce8(p.r[t]);
    if (p.count == 8) {
      _mm256_storeu_ps(out, v);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, v);
      for (int i = 0; i < p.count; ++i) out[i] = tmp[i];
    }
  }
  p.first += p.count;
  p.count = 0;
}

// The AVX2 pair kernels' loop (int4, int5 and int8 weights against x as int16, int4 and int5 against x as bytes;
// PAIR::load<TT>(acc, row, half, xs, stride, d, Gp, p) multiplies a row's pair p of groups, a last odd group alone
// when ``half``, into acc, lanes 0-3 group 2p's and 4-7 group 2p+1's; PAIR::x(xp) is the layout of x it reads):
// per row the scale factors, the pairs into two accumulator sets (even and odd pairs), int4's offset term (stored
// offsets against x's exact group sums in the fp32 mode, as rounded in the int8 mode; Q4_0's implied -8 * scale,
// Q5_0's -16 * scale, against x as rounded, as on VNNI).
template <int TT, class PAIR>
PG_TARGET_AVX2 PG_INLINE void pair_rows(const Args& a, const Block& blk, int64_t t0, int64_t n1, int64_t row_bytes) {
  const XPrep& xp = *a.x;
  const int64_t G = xp.G, Gp = xp.Gp, pairs = G / 2, stride = (G + 1) / 2 * 2 * kGroup;
  const auto* xs = PAIR::x(xp) + t0 * stride;  // x16p, or x8p (int4_rows_x8_avx2)
  float* d = blk.scratch;  // [TT, Gp]: scale * x scale
  const __m256 implied = _mm256_set1_ps(implied_offset(a.s->kind));
  Pending<TT> pending;
  pending.first = blk.n0;
  for (int64_t n = blk.n0; n < n1; ++n) {
    // the params are read here (no fp32 copy per block: ~15% of a decode step)
    const uint8_t* row = a.s->q + n * row_bytes;
    __m256 acc0[TT], acc1[TT], term[TT];
    for (int t = 0; t < TT; ++t) acc0[t] = acc1[t] = _mm256_setzero_ps();
    scales_times_x16<TT>(*a.s, n, xp, t0, d, term);
    int64_t p = 0;
    if constexpr (PAIR::kQuad) {  // int5: a quad of pairs at a time, each pair's place in it known when compiled
      for (; p + 4 <= pairs; p += 4) {
        for (int64_t o = 0; o < 4 * PAIR::kBytes; o += 64) prefetch_ahead(row + p * PAIR::kBytes + o);
        PAIR::template load<TT, 0>(acc0, row, false, xs, stride, d, Gp, p);
        PAIR::template load<TT, 1>(acc1, row, false, xs, stride, d, Gp, p + 1);
        PAIR::template load<TT, 2>(acc0, row, false, xs, stride, d, Gp, p + 2);
        PAIR::template load<TT, 3>(acc1, row, false, xs, stride, d, Gp, p + 3);
      }
    }
    for (; p + 2 <= pairs; p += 2) {
      for (int64_t o = 0; o < 2 * PAIR::kBytes; o += 64) prefetch_ahead(row + p * PAIR::kBytes + o);
      PAIR::template load<TT>(acc0, row, false, xs, stride, d, Gp, p);
      PAIR::template load<TT>(acc1, row, false, xs, stride, d, Gp, p + 1);
    }
    if (p < pairs) PAIR::template load<TT>(acc0, row, false, xs, stride, d, Gp, p++);
    if (G % 2) PAIR::template load<TT>(acc1, row, true, xs, stride, d, Gp, p);
    for (int t = 0; t < TT; ++t) {
      const __m256 r = _mm256_add_ps(acc0[t], acc1[t]);
      pending.r[t][pending.count] = !nibble_kind(a.s->kind) ? r
                                   : symmetric(*a.s) ? _mm256_fmadd_ps(implied, term[t], r) : _mm256_add_ps(r, term[t]);
    }
    if (++pending.count == 8) flush(pending, a, t0);
  }
  if (pending.count) flush(pending, a, t0);
}

#endif

}  // namespace pg
