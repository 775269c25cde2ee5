// Shared declarations of the CPU kernels behind playground/engine/fast (pure C++: no torch headers, so the kernel
// files compile fast; the ops files wrap them for torch and split the work over its thread pool).
//
// Weight formats (group of 32 along K; see int4_kernel.py and int8_kernel.py):
//   int4  qweight uint8 [N, K/2] (group g of a row: 16 bytes, byte j = q[32g+j] | q[32g+16+j] << 4),
//         scales and offsets fp16 [N, K/32]: w = q * scale + offset, q in 0..15; no offsets (symmetric, GGUF's
//         Q4_0): offset = -8 * scale; or (GGUF's Q4_K) the block's own parameters instead (QSeg::kparams);
//   int8  qweight int8 [N, K], scales fp16 [N, K/32]: w = q * scale;
//   int6  (GGUF's Q6_K; K a multiple of 256) qweight uint8 [N, 3K/4]: per block of 256 weights (8 groups, two
//         quads of 4), 192 bytes: each quad's 64 nibble bytes laid out as int4's (byte 16i+j: group i's q[j] low,
//         q[16+j] high), then 64 bytes of the values' bits 4-5 (byte b: bits 0-1 for quad 0's low nibble of its
//         byte b, 2-3 its high one, 4-5 / 6-7 quad 1's); a scale per 16 weights, per block 16: group i of
//         each quad (0..3), then the quad, then the half: 4i + 2 quad + half (int6_scale_at), as Q6_K holds them
//         (QSeg::kparams: int8 sub-scales and fp16 d per block); w = (q - 32) * scale, q in 0..63.
//   int5  (GGUF's Q5_0, Q5_1, Q5_K; the AVX2 and AVX512-VNNI paths) qweight uint8 [N, int5_row_bytes(K)]: per
//         quad of 8 groups (4 pairs of groups, 256 weights) 32 bytes of fifth bits, then the groups' nibble bytes
//         laid out as int4's (16 a group); a last quad of fewer groups the same, shorter. Fifth-bit byte b, bit 2r + v: pair r's nibble
//         byte b (group 2r + b / 16, its byte b % 16), low nibble (v = 0: q[b % 16]) or high (v = 1: q[16 + b % 16]);
//         scales and offsets as int4's: w = q * scale + offset, q in 0..31; no offsets (Q5_0): offset = -16 * scale;
//         Q5_K: its own parameters (QSeg::kparams).
// Activation modes: fp32 (x as is; on AVX512-VNNI rounded per group of 32 to int16, unless exact fp32 is set) or
// int8 (x rounded per group of 32 to int8, scale max|x|/127, like llama.cpp's q8). In the int8 mode int4 offsets,
// stored or Q4_0's implied -8 * scale, meet x's group sums as rounded (sumq; as llama.cpp's Q4_0 x Q8_0; in
// integers on AVX512-VNNI), so x's rounding errors meet the centred weights q * scale + offset. Against x's exact
// sums they had met q * scale alone (0..15 steps, not centred): the int4-a8 prefill's perplexity on the embedded
// model went +1.02% -> -0.00% with this (bench/prefill_quality.py). The fp32 mode's stored offsets meet the exact
// sums (its int16 rounding errors are ~256x smaller).
#pragma once

#include <cstdint>

namespace pg {

constexpr int64_t kGroup = 32;
constexpr int64_t kMaxT = 8;  // rows of x per pass over the weights

enum Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
enum Kind { kInt4 = 1, kInt8 = 2, kInt6 = 3, kInt5 = 4 };

struct Cpu {
  int isa = kScalar;
  int int8_dot = 0;  // 0 scalar, 1 avx2, 2 avx-vnni, 3 avx512-vnni
  bool bf16 = false;  // AVX512-BF16 (fast bf16 GEMMs in oneDNN)
};
const Cpu& cpu();
int active_isa();                     // the widest path allowed now (cpu().isa capped by set_isa_cap)
void set_isa_cap(int isa);
const char* isa_name(int isa);
const char* int8_dot_name(int isa);

// One quantized weight (or a row range of one).
struct QSeg {
  int kind = kInt4;
  const uint8_t* q = nullptr;         // int4: [N, K/2] bytes; int8: [N, K] int8 (as bytes); int6: [N, 3K/4]; int5
  const uint16_t* scales = nullptr;   // fp16 [N, G] (int4, int5, int8)
  const uint16_t* offsets = nullptr;  // fp16 [N, G] (int4 and int5; null: symmetric, -8 / -16 * scale)
  // int4 and int5 held as GGUF's Q4_K / Q5_K scale them (scales and offsets null): per 256 weights kSuperBytes
  // bytes, 8 groups' 6-bit scale codes, their 8 min codes, then fp16 d and dmin: w = d * sc * q - dmin * m. Decode
  // reads 2.5 bytes of parameters per group where fp16 scales and offsets take 4 (Q4_K: 0.578 bytes a weight, not
  // 0.625), and the values are GGUF's own, not rounded to fp16. int6 (Q6_K): always, kInt6ParamBytes a block.
  const uint8_t* kparams = nullptr;
  int64_t N = 0, K = 0;
  // int5 read where GGUF's Q5_K blocks lie (the file's memory map: no copy to write at load): q points at the first
  // block's qh, each 256 weights kQ5KBlockBytes on (its 16 bytes of parameters skipped: kparams holds them as
  // above). A block's qh and qs are int5's quad with one difference: nibble byte l of pair r holds group 2r's value
  // l (low nibble) and group 2r + 1's (high), where int5's holds group 2r + l / 16's values l % 16 and 16 + l % 16;
  // fifth-bit byte b, bit 2r + v, goes with pair r's nibble byte b, nibble v, in both.
  bool k5 = false;
};

constexpr int64_t kSuperGroups = 8;  // groups of 32 per K-quant super-block (256 weights)
constexpr int64_t kSuperBytes = 20;  // its parameters (QSeg::kparams)
// int6 (Q6_K) parameters per 256 weights, in QSeg::kparams: 16 int8 sub-scales in int6_scale_at's order within the
// block, then fp16 d: a 16-weight run's scale is d * its sub-scale (Q6_K's own, not rounded to fp16).
constexpr int64_t kInt6ParamBytes = 18;
inline int64_t param_bytes_per_row(const QSeg& s, int64_t G) {  // bytes of a row's parameters
  if (s.kind == kInt6) return G / kSuperGroups * kInt6ParamBytes;
  return s.kparams ? G / kSuperGroups * kSuperBytes : 2 * G * (s.offsets ? 2 : 1);
}
// Symmetric nibble weights: the offset implied (Q4_0, Q5_0), none stored.
inline bool symmetric(const QSeg& s) { return !s.offsets && !s.kparams; }

// x [T, K] prepared once per call for every weight that multiplies it.
struct XPrep {
  const float* x = nullptr;
  int64_t T = 0, K = 0, G = 0, Gp = 0;  // Gp: G rounded up to 8 (row stride of the per-group arrays, zero pad)
  bool int8_x = false;
  float* sumx = nullptr;  // [T, Gp] per-group sums of x
  int8_t* xq = nullptr;   // [T, K] int8 mode
  float* xs = nullptr;    // [T, Gp] int8 mode: x scales
  float* sumq = nullptr;  // [T, Gp] per-group sums of x as rounded (int8 mode; AVX2's int16 x), see offset_sums
  int32_t* qsum = nullptr;  // [T, Gp] int8 mode, where asked for (prefill's AVX512-VNNI GEMM): the sums of xq
  int32_t* qsum16 = nullptr;  // [T, K/16] the same per 16 (prefill's GEMMs, int6 weights: a scale per half group)
  // [T, K] int8 mode, for int4 weights on AVX512-VNNI (decode, and prefill's GEMM under kGemmSmallT rows; null
  // elsewhere): xq with each 4 groups' first halves, then
  // their second halves (128 bytes), so one 64-byte load of 4 groups' int4 bytes lines up with the x its low
  // nibbles multiply, and the next 64 bytes with the high ones. Groups past the last whole 4 stay in xq's order.
  int8_t* xq4 = nullptr;
  // fp32 mode on AVX512-VNNI (null elsewhere): x rounded per group to int16 (scale max|x| / kInt16Levels in xs16
  // [T, Gp]; error at most 1.6e-5 of the group's largest value, far below the fp16 weight scales'), each value
  // split into two signed bytes, x16 = 256 * hi + lo, so vpdpbusd (64 products per instruction, vpdpwssd's 32) does
  // the multiplying: xh / xl [T, K] in x's order (int8 weights), xh4 / xl4 in xq4's order (int4 weights).
  int8_t* xh = nullptr;
  int8_t* xl = nullptr;
  int8_t* xh4 = nullptr;
  int8_t* xl4 = nullptr;
  // The AVX2 path (null elsewhere; in the int8 mode only for int8 and int6 weights): the same int16 rounding (xs16;
  // in the int8 mode x's int8 values, xs16 = xs, where no AVX-VNNI multiplies bytes), as int16 [T, 32 * G rounded up to even], per pair of groups (g, g+1) eight
  // 8-value chunks: g's x[0, 2, .., 14], g+1's, g's x[16, 18, .., 30], g+1's, then the odd k's the same way (a
  // missing last g+1: zeros): the order in which the 16-bit lanes hold an int4 row's nibbles, so the kernels widen
  // by shifts alone (int4_rows_x16_avx2, int8_rows_x16_avx2).
  int16_t* x16p = nullptr;
  // The AVX2 int8 mode, for int4 weights (null elsewhere): x's int8 values as bytes, per pair of groups (g, g+1)
  // 64 bytes: g's x[0..15], g+1's x[0..15], g's x[16..31], g+1's x[16..31] (a missing last g+1: zeros), so one
  // 32-byte load of two groups' nibble bytes, masked and shifted, meets x in vpmaddubsw (int4_rows_x8_avx2).
  int8_t* x8p = nullptr;
  // The integer sums' constant terms, started from (see c_stride): int4 symmetric weights' -8 * the group's x16
  // (fp32 mode) or xq (int8 mode) sum (Q4_0: offset = -8 * scale), per 4 groups in lanes 0/4/8/12 (c4); int8
  // weights' -128 * the group's x sum
  // (the weights are biased by +128 to be vpdpbusd's unsigned operand), per 2 groups in lanes 0/8: of x16 (c16n),
  // of int8 x (c8).
  int32_t* c4 = nullptr;
  int32_t* c16n = nullptr;
  int32_t* c8 = nullptr;
  // [T, K/16] int6 weights: -32 times each 16-value half group's sum of x as the mode rounds it (x16 * xs16 or
  // xq * xs), in the order of an int6 row's scales.
  float* c6 = nullptr;
  // [T, K/16] the AVX2 int6 kernel's: each half group's x scale (xs16), in c6's order.
  float* xs6 = nullptr;
  float* xs16 = nullptr;
  // [T, K] prefill's GEMM on the AVX2 path, fp32 mode: x rounded to int16 (xs16), for int8 and int6 weights.
  int16_t* x16 = nullptr;
};

// The group sums of x that int4 offsets meet: as rounded in the int8 mode (sumq), exact in the fp32 one (sumx; see
// the activation modes above; Q4_0's implied offsets meet sumq in both where x is rounded, through c4 or
// scales_times_x16).
inline const float* offset_sums(const XPrep& xp) { return xp.int8_x ? xp.sumq : xp.sumx; }
// The int16 rounding's largest magnitude: 127 * 256 + 127, so both bytes of the split stay within int8.
constexpr float kInt16Levels = 32639.f;
// out[j] = act(gu[j]) * gu[inter + j] (act 0: SiLU, 1: GELU, tanh form): the MLP's gate times its up projection
// (out may be gu itself: each element is read before it is written).
void gated_activation(int isa, int act, const float* gu, int64_t inter, float* out);
// RMS norm of one row: out = x / sqrt(mean(x^2) + eps) * w (fp32 sums); with res, x + res first (written back to
// x: the residual stream).
void rms_norm_row(int isa, float* x, const float* res, const float* w, float* out, int64_t n, float eps);
// Row stride of the constant arrays: 16 int32 per 4 groups (c4) or per 2 groups (c16n, c8).
inline int64_t c_stride(int64_t G, int per) { return (G + per - 1) / per * 16; }
// Whether the AVX512-VNNI kernels apply: int4 weights 4 groups per vector (int8 x from XPrep::xq4, int16 x from
// xh4 / xl4), int8 weights 2 groups per vector (xq with c8, xh / xl with c16n).
bool quad_kernel(int isa);
// Whether fp32 x is rounded to int16 now (quad_kernel or x16_avx2, unless exact fp32 was asked for: tests that
// compare against fp32 arithmetic to float rounding).
bool int16_x(int isa);
// Whether the AVX2 kernels take fp32 x rounded to int16 (int4 and int8 weights: XPrep::x16p; no constants):
// vpmaddwd on the weights widened to int16, where dequantizing them to fp32 left decode at a third of the memory's
// rate.
bool x16_avx2(int isa);
void set_exact_fp32(bool on);
bool exact_fp32();
// Fills sumx (and xq/xs in int8 mode, and xq4 when set); the arrays must hold T*Gp (T*K) zeroed entries.
void prepare_x(int isa, XPrep& xp);
// Floats of scratch seg_rows needs per thread for a weight of G groups.
int64_t seg_scratch_floats(int64_t G);
// out[t * ldo + n] = x[t] . w[n] for rows n in [n0, n1) of seg, all T rows of x (out points at column 0 of seg).
void seg_rows(int isa, const QSeg& s, const XPrep& xp, int64_t n0, int64_t n1, float* out, int64_t ldo,
              float* scratch);
// Prefill's GEMM on the AVX2 path (gemm_avx2.cpp): out[t * ldo + n] = x[t] . w[n] for rows n in [n0, n1) of a
// segment and all T rows of x: int4, int5 and int6 weights with x prepared in int8 mode, in either mode (prepare_x:
// xq, xs, sumx, sumq; int6: with qsum16), int8 weights in the fp32 mode only (prepare_gemm_x16: x16, xs16); rows are
// repacked gemm_block_rows(K) at a time into scratch (gemm_scratch_bytes(K) bytes per thread).
int64_t gemm_block_rows(int64_t K);
int64_t gemm_scratch_bytes(int64_t K);
void prepare_gemm_x16(XPrep& xp);
void gemm_rows(const QSeg& s, const XPrep& xp, int64_t n0, int64_t n1, float* out, int64_t ldo, uint8_t* scratch);
// The same on AVX512-VNNI (gemm_avx512.cpp; quad_kernel): int4, int5 and int6 weights, x prepared in int8 mode (int6:
// with qsum16).
int64_t gemm_block_rows_vnni512(int64_t K);
int64_t gemm_scratch_bytes_vnni512(int64_t K);
void gemm_rows_vnni512(const QSeg& s, const XPrep& xp, int64_t n0, int64_t n1, float* out, int64_t ldo,
                       uint8_t* scratch);
// Its numbers for int4, int5 and int6 weights and fewer than kGemmSmallT rows of x, without the panels
// (gemm_small.cpp). From 16 rows the panels pay for themselves (a 22016x2048 Q4_K weight: level at 16 rows).
constexpr int64_t kGemmSmallT = 16;
bool gemm_small_vnni512_takes(const QSeg& s, int64_t T);
void gemm_small_vnni512(const QSeg& s, const XPrep& xp, int64_t n0, int64_t n1, float* out, int64_t ldo);
// The same for gemm_rows' int4 and int5 weights on the AVX2 path, under 8 rows of x (gemm_small_avx2.cpp).
bool gemm_small_avx2_takes(const QSeg& s, int64_t T);
void gemm_small_avx2(const QSeg& s, const XPrep& xp, int64_t n0, int64_t n1, float* out, int64_t ldo);
// Where group g's half h sits among an int6 row's K/16 scales (the order XPrep::c6 and xs6 follow too).
inline int64_t int6_scale_at(int64_t g, int64_t h) { return g / 8 * 16 + g % 4 * 4 + g % 8 / 4 * 2 + h; }

constexpr int64_t kInt5QuadBytes = 160;  // 32 bytes of fifth bits + 8 groups' 16 nibble bytes
constexpr int64_t kQ5KBlockBytes = 176;  // QSeg::k5: a GGUF Q5_K block (16 bytes of parameters, then a quad)
inline int64_t int5_row_bytes(int64_t K) {
  const int64_t G = K / kGroup;
  return G / 8 * kInt5QuadBytes + (G % 8 ? 32 + 16 * (G % 8) : 0);
}
inline int64_t int5_quad_bytes(bool k5) { return k5 ? kQ5KBlockBytes : kInt5QuadBytes; }
// Whether the weights hold nibbles with a scale and an offset per group (int4, int5), and the offset implied
// without stored ones (-8 or -16 times the scale).
inline bool nibble_kind(int kind) { return kind == kInt4 || kind == kInt5; }
inline float implied_offset(int kind) { return kind == kInt5 ? -16.f : -8.f; }

// Group g's 32 values (0..31) of an int5 row (k5: QSeg::k5's layout).
void int5_group_values(const uint8_t* row, int64_t g, uint8_t* q, bool k5);
void dequant_row_int5_scalar(const QSeg& s, int64_t n, float* out);
// Row bytes of a segment's qweight.
inline int64_t row_bytes(const QSeg& s) {
  if (s.kind == kInt5) return s.k5 ? s.K / 256 * kQ5KBlockBytes : int5_row_bytes(s.K);
  return s.kind == kInt4 ? s.K / 2 : s.kind == kInt6 ? s.K / 4 * 3 : s.K;
}
// Rows [n0, n1) of seg dequantized to fp32 [n1-n0, K], or to bf16 (uint16) when dst16 is set.
void dequant_rows(int isa, const QSeg& s, int64_t n0, int64_t n1, float* dst32, uint16_t* dst16);
// fp32 -> bf16, rounded to nearest even.
void to_bf16(int isa, const float* src, uint16_t* dst, int64_t n);

float half_to_float(uint16_t h);
// Row n's block b (256 weights) of int6 weights: its 16 scales' parameters (kInt6ParamBytes), and scale i of them.
inline const uint8_t* int6_params(const QSeg& s, int64_t n, int64_t b) {
  return s.kparams + (n * (s.K / 256) + b) * kInt6ParamBytes;
}
inline float int6_scale(const uint8_t* p, int64_t i) {
  return half_to_float(static_cast<uint16_t>(p[16] | p[17] << 8)) * static_cast<float>(static_cast<int8_t>(p[i]));
}
// Row n's group g: its scale and offset in fp32, however stored (fp16, implied, K-quant codes; the SIMD code reads
// them through F16C: rows.h's group_params).
inline const uint8_t* super_at(const QSeg& s, int64_t n, int64_t g) {  // the group's K-quant super-block
  return s.kparams + (n * (s.K / kGroup) + g) / kSuperGroups * kSuperBytes;
}
inline float group_scale(const QSeg& s, int64_t n, int64_t g) {
  if (!s.kparams) return half_to_float(s.scales[n * (s.K / kGroup) + g]);
  const uint8_t* p = super_at(s, n, g);
  return half_to_float(static_cast<uint16_t>(p[16] | p[17] << 8)) * static_cast<float>(p[g % kSuperGroups]);
}
inline float group_offset(const QSeg& s, int64_t n, int64_t g) {
  if (s.offsets) return half_to_float(s.offsets[n * (s.K / kGroup) + g]);
  if (!s.kparams) return implied_offset(s.kind) * group_scale(s, n, g);
  const uint8_t* p = super_at(s, n, g);
  return -half_to_float(static_cast<uint16_t>(p[18] | p[19] << 8)) * static_cast<float>(p[8 + g % kSuperGroups]);
}
// Rows [n0, n1)'s scales and offsets in fp32 ([rows, G] each), however stored.
void params_to_floats(int isa, const QSeg& s, int64_t n0, int64_t n1, float* sc, float* of);
void halves_to_floats(int isa, const uint16_t* src, float* dst, int64_t n);
void floats_to_halves(int isa, const float* src, uint16_t* dst, int64_t n);

// ---- attention over a KV cache, one decode position per row ----------------------------------------------------
// Caches [slots, kv, cap, hd] (fp32, or fp16 as uint16). For row b: its query heads q[b] (n_heads * hd) attend to
// keys lo..pos of its slot; the result goes to out[b] (n_heads * hd). One task = (row, kv head, key chunk).
struct AttnArgs {
  const float* q = nullptr;  // [B, n_heads, hd]
  const void* k = nullptr;
  const void* v = nullptr;
  bool half = false;
  int64_t cap = 0, hd = 0, n_heads = 0, n_kv = 0;
  const int64_t* slots = nullptr;
  const int64_t* lo = nullptr;   // first visible key per row
  const int64_t* pos = nullptr;  // last visible key per row
  float scale = 1.f, softcap = 0.f;
  float* out = nullptr;  // [B, n_heads, hd]
};
constexpr int64_t kAttnChunk = 512;  // keys per task
// Partial results of one task (chunk c of row b, kv head g): per q head of the group, max, sum and acc[hd].
// part must hold group * (hd + 2) floats; scores group * kAttnChunk floats.
void attn_chunk(int isa, const AttnArgs& a, int64_t b, int64_t g, int64_t k0, int64_t k1, float* part,
                float* scores);
// Combines the partials of a row's chunks into out.
void attn_combine(const AttnArgs& a, int64_t b, int64_t g, const float* parts, int64_t n_chunks);

}  // namespace pg
