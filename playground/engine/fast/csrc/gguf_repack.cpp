// GGUF blocks repacked into the kernels' weight formats (gguf_repack.py does the same in numpy where this library
// is not built; there the per-type layouts are explained). The file's tensors are memory-mapped: these loops are
// bound by reading them once and writing the result once, ~10x numpy's passes over the same bytes.
//   Q4_0 [rows, blocks, 18] -> int4 (qweight, scales, no offsets): the nibbles already are the int4 packing; scale
//        d, offset -8d implied (symmetric);
//   Q4_1 [rows, blocks, 20] -> int4: the same nibbles, scale d, offset m;
//   Q4_K [rows, blocks, 144] -> int4: each 32-weight sub-block is a group, its parameters as the block scales them
//        (QSeg::kparams: 6-bit scale and min codes, d and dmin per 256 weights; no fp16 scales or offsets);
//        a 64-weight chunk's 32 bytes hold sub-block 2c in their low nibbles and 2c + 1 in their high ones;
//   Q8_0 [rows, blocks, 34] -> int8 (qweight, scales): the same bytes and scale;
//   Q5_0 [rows, blocks, 22] -> int8: q - 16 (exact), scale d;
//   Q6_K [rows, blocks, 210] -> int6 (qweight, params; kernels.h): the same values, its own sub-scales and d
//        (where the int6 kernel does not run, int8: gguf_int8.cpp, with Q5_K, Q3_K, Q2_K and IQ4_NL / IQ4_XS).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <tuple>

#include "gguf_blocks.h"
#include "kernels.h"
#include "simd.h"

namespace {

using namespace pg::gguf;  // NOLINT: this file's helpers

// The int4 format's tensors for `groups` groups of 32 per block, and pointers to fill them.
struct Int4Out {
  at::Tensor q, sc, of;
  uint8_t* qp;
  uint16_t *sp, *op;
  // symmetric (Q4_0): no offsets at all (-8 * scale, implied): `of` is empty and out[2], if given, unused.
  Int4Out(const at::Tensor& blocks, int64_t groups, at::TensorList out, bool symmetric = false)
      : q(per_block(blocks, 16 * groups, at::kByte, out, 0)), sc(per_block(blocks, groups, at::kHalf, out, 1)),
        of(symmetric ? at::empty({0}, blocks.options().dtype(at::kHalf)) : per_block(blocks, groups, at::kHalf, out, 2)),
        qp(q.data_ptr<uint8_t>()), sp(halves(sc)), op(symmetric ? nullptr : halves(of)) {}
  std::tuple<at::Tensor, at::Tensor, at::Tensor> result() const { return {q, sc, of}; }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> repack_q4_0(const at::Tensor& blocks, at::TensorList out) {
  Int4Out o(blocks, 1, out, /*symmetric=*/true);
  uint8_t* qp = o.qp;
  uint16_t* sp = o.sp;
  for_blocks(blocks, 18, "repack_q4_0", 4096, [&](int64_t i, const uint8_t* blk) {
    std::memcpy(sp + i, blk, 2);
    std::memcpy(qp + i * 16, blk + 2, 16);
  });
  return o.result();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> repack_q4_1(const at::Tensor& blocks, at::TensorList out) {
  Int4Out o(blocks, 1, out);
  uint8_t* qp = o.qp;
  uint16_t *sp = o.sp, *op = o.op;
  for_blocks(blocks, 20, "repack_q4_1", 4096, [&](int64_t i, const uint8_t* blk) {
    std::memcpy(sp + i, blk, 2);
    std::memcpy(op + i, blk + 2, 2);
    std::memcpy(qp + i * 16, blk + 4, 16);
  });
  return o.result();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> repack_q4_k(const at::Tensor& blocks, at::TensorList out) {
  at::Tensor q = per_block(blocks, 128, at::kByte, out, 0), kp = per_block(blocks, pg::kSuperBytes, at::kByte, out, 1);
  uint8_t *qp = q.data_ptr<uint8_t>(), *kpp = kp.data_ptr<uint8_t>();
  for_blocks(blocks, 144, "repack_q4_k", 1024, [&](int64_t i, const uint8_t* blk) {
    k_params(blk, kpp + i * pg::kSuperBytes);
    const uint8_t* qs = blk + 16;
    uint8_t* out = qp + i * 128;
    for (int c = 0; c < 4; ++c) k_nibbles(qs + 32 * c, qs + 32 * c + 16, out + 32 * c, out + 32 * c + 16);
  });
  return {q, kp, at::empty({0}, blocks.options().dtype(at::kHalf))};
}

// One Q5_0 block's 32 weights: 4 low bits from qs (j: low nibble of byte j, j + 16: its high nibble), the fifth from
// bit j of qh; minus 16.
void q5_0_block(const uint8_t* blk, int8_t* out) {
  uint32_t qh;
  std::memcpy(&qh, blk + 2, 4);
  const uint8_t* qs = blk + 6;
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<int8_t>(((qs[j] & 15) | (((qh >> j) & 1) << 4)) - 16);
    out[j + 16] = static_cast<int8_t>(((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
  }
}

#if PG_X86
// The same in one AVX2 vector: qh's bit k lands in byte k (each byte picks qh's byte k / 8, then tests its bit):
// the scalar loop was ~10x a Q8_0 copy, 0.09 s of Qwen2.5-0.5B Q4_K_M's load.
PG_TARGET_AVX2 void q5_0_block_avx2(const uint8_t* blk, int8_t* out) {
  uint32_t qh;
  std::memcpy(&qh, blk + 2, 4);
  const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 6));
  const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), _mm256_set1_epi8(15));
  const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3,
                                        3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(
                                            _mm256_set1_epi32(static_cast<int>(qh)), pick), bit), bit);
  const __m256i v = _mm256_or_si256(nib, _mm256_and_si256(set, _mm256_set1_epi8(16)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_sub_epi8(v, _mm256_set1_epi8(16)));
}
#endif

std::tuple<at::Tensor, at::Tensor> repack_q5_0(const at::Tensor& blocks, at::TensorList out) {
  Int8Out o(blocks, 1, out);
  int8_t* qp = o.qp;
  uint16_t* sp = o.sp;
#if PG_X86
  const bool avx2 = pg::active_isa() >= pg::kAvx2;
#else
  const bool avx2 = false;
#endif
  for_blocks(blocks, 22, "repack_q5_0", 4096, [&](int64_t i, const uint8_t* blk) {
    std::memcpy(sp + i, blk, 2);
#if PG_X86
    if (avx2) {
      q5_0_block_avx2(blk, qp + i * 32);
      return;
    }
#endif
    q5_0_block(blk, qp + i * 32);
  });
  return o.result();
}

std::tuple<at::Tensor, at::Tensor> repack_q8_0(const at::Tensor& blocks, at::TensorList out) {
  Int8Out o(blocks, 1, out);
  int8_t* qp = o.qp;
  uint16_t* sp = o.sp;
  for_blocks(blocks, 34, "repack_q8_0", 4096, [&](int64_t i, const uint8_t* blk) {
    std::memcpy(sp + i, blk, 2);
    std::memcpy(qp + i * 32, blk + 2, 32);
  });
  return o.result();
}

// A Q6_K block's 6-bit values in int6's layout (kernels.h). Q6_K's half k is quad k: weight 32m + l of it has its
// nibble in ql[l % 32 + 32 (m % 2)] (low for m < 2, high above) and its top bits at 2m of qh[l]; group i of the quad
// is m = i. Byte 16i + j of a quad's nibbles: group i's weight j (low nibble) and 16 + j (high); top-bit byte
// 16g + j: group g's weight j (bits 4k, quad k) and 16 + j (bits 4k + 2).
static void q6_k_int6_bytes(const uint8_t* blk, uint8_t* dst) {
  for (int k = 0; k < 2; ++k) {
    const uint8_t* ql = blk + 64 * k;
    uint8_t* nib = dst + 64 * k;
    k_nibbles(ql, ql + 16, nib, nib + 32);
    k_nibbles(ql + 32, ql + 48, nib + 16, nib + 48);
  }
  for (int g = 0; g < 4; ++g) {  // each shift keeps its 2 bits within their byte
#if PG_X86
    __m128i top = _mm_setzero_si128();
    for (int k = 0; k < 2; ++k) {
      const uint8_t* qh = blk + 128 + 32 * k;
      const __m128i m3 = _mm_set1_epi8(3), at = _mm_cvtsi32_si128(2 * g);
      const __m128i lo = _mm_and_si128(_mm_srl_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qh)), at), m3);
      const __m128i hi =
          _mm_and_si128(_mm_srl_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qh + 16)), at), m3);
      top = _mm_or_si128(top, _mm_or_si128(_mm_sll_epi16(lo, _mm_cvtsi32_si128(4 * k)),
                                           _mm_sll_epi16(hi, _mm_cvtsi32_si128(4 * k + 2))));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 128 + 16 * g), top);
#else
    for (int j = 0; j < 16; ++j) {
      int v = 0;
      for (int k = 0; k < 2; ++k) {
        const uint8_t* qh = blk + 128 + 32 * k;
        v |= ((qh[j] >> (2 * g)) & 3) << (4 * k) | ((qh[16 + j] >> (2 * g)) & 3) << (4 * k + 2);
      }
      dst[128 + 16 * g + j] = static_cast<uint8_t>(v);
    }
#endif
  }
}

// Q6_K -> int6 (kernels.h): the same 6-bit values; the block's int8 sub-scales in the kernels' order, then its d
// (QSeg::kparams: kInt6ParamBytes a block).
std::tuple<at::Tensor, at::Tensor> repack_q6_k_int6(const at::Tensor& blocks, at::TensorList out) {
  at::Tensor q = per_block(blocks, 192, at::kByte, out, 0);
  at::Tensor sc = per_block(blocks, pg::kInt6ParamBytes, at::kByte, out, 1);
  uint8_t *qp = q.data_ptr<uint8_t>(), *sp = sc.data_ptr<uint8_t>();
  for_blocks(blocks, 210, "repack_q6_k_int6", 256, [&](int64_t i, const uint8_t* blk) {
    const uint8_t* sub = blk + 192;
    uint8_t* p = sp + i * pg::kInt6ParamBytes;
    q6_k_int6_bytes(blk, qp + i * 192);
    for (int k = 0; k < 2; ++k) {
      for (int g = 0; g < 4; ++g) {  // scale 4g + 2k + h: quad k's group g, its half h (sub-block 8k + 2g + h)
        p[4 * g + 2 * k] = sub[8 * k + 2 * g];
        p[4 * g + 2 * k + 1] = sub[8 * k + 2 * g + 1];
      }
    }
    std::memcpy(p + 16, blk + 208, 2);
  });
  return {q, sc};
}

// A GGUF string array (count times: uint64 length, then that many bytes) at the start of region (uint8, to the end
// of the file): the strings' bytes joined by NUL, the bytes the array spans, and whether no string itself holds a
// NUL (then splitting the decoded text at NUL gives the strings back). A vocabulary is 50k-262k strings: a Python
// loop over them took 0.05-0.15 s of a model's load.
std::tuple<at::Tensor, int64_t, bool> gguf_strings(const at::Tensor& region, int64_t count) {
  TORCH_CHECK(region.scalar_type() == at::kByte && region.dim() == 1 && region.is_contiguous(),
              "gguf_strings: region must be contiguous uint8");
  TORCH_CHECK(count >= 0, "gguf_strings: negative count");
  const uint8_t* base = region.data_ptr<uint8_t>();
  const uint64_t size = static_cast<uint64_t>(region.numel());
  uint64_t pos = 0, total = 0;
  for (int64_t i = 0; i < count; ++i) {  // sizes first (and bounds), so the output is allocated once
    TORCH_CHECK(size - pos >= 8, "a string array runs past the end of the file");
    uint64_t n;
    std::memcpy(&n, base + pos, 8);  // little-endian, like the files (x86 and arm64 hosts)
    TORCH_CHECK(n <= size - pos - 8, "a string array runs past the end of the file");
    pos += 8 + n;
    total += n + (i ? 1 : 0);
  }
  at::Tensor joined = at::empty({static_cast<int64_t>(total)}, region.options());
  uint8_t* out = joined.data_ptr<uint8_t>();
  bool clean = true;
  pos = 0;
  for (int64_t i = 0; i < count; ++i) {
    uint64_t n;
    std::memcpy(&n, base + pos, 8);
    if (i) *out++ = 0;
    if (n && std::memchr(base + pos + 8, 0, n)) clean = false;
    std::memcpy(out, base + pos + 8, n);
    out += n;
    pos += 8 + n;
  }
  return {joined, static_cast<int64_t>(pos), clean};
}

// Whether any of these fp16 values (2-byte elements, 1-D or 2-D, any strides) is an inf or a NaN: all exponent
// bits set. One pass on every core; numpy's masked max (a K-quant's d and dmin are a strided view of its
// parameters) took 0.13-0.19 s of a Llama-3.1-8B load.
bool nonfinite_halves(const at::Tensor& bits) {
  TORCH_CHECK(bits.device().is_cpu() && bits.element_size() == 2 && bits.dim() >= 1 && bits.dim() <= 2,
              "nonfinite_halves: 2-byte values, 1-D or 2-D, on the CPU");
  const at::Tensor b = bits.dim() == 2 ? bits : bits.unsqueeze(0);
  const int64_t rows = b.size(0), cols = b.size(1), s0 = b.stride(0), s1 = b.stride(1);
  const auto* p = static_cast<const uint16_t*>(b.data_ptr());
  std::atomic<bool> bad{false};
  at::parallel_for(0, rows, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, cols)),
                   [&](int64_t lo, int64_t hi) {
                     int found = 0;
                     for (int64_t r = lo; r < hi; ++r) {
                       const uint16_t* row = p + r * s0;
                       for (int64_t c = 0; c < cols; ++c) found |= (row[c * s1] & 0x7C00) == 0x7C00;
                     }
                     if (found) bad.store(true, std::memory_order_relaxed);
                   });
  return bad.load();
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(playground, m) {
  m.def("nonfinite_halves(Tensor bits) -> bool");
  m.def("gguf_strings(Tensor region, int count) -> (Tensor, int, bool)");
  m.def("repack_q4_0(Tensor blocks, Tensor[] out) -> (Tensor, Tensor, Tensor)");
  m.def("repack_q4_1(Tensor blocks, Tensor[] out) -> (Tensor, Tensor, Tensor)");
  m.def("repack_q4_k(Tensor blocks, Tensor[] out) -> (Tensor, Tensor, Tensor)");
  m.def("repack_q5_0(Tensor blocks, Tensor[] out) -> (Tensor, Tensor)");
  m.def("repack_q8_0(Tensor blocks, Tensor[] out) -> (Tensor, Tensor)");
  m.def("repack_q6_k_int6(Tensor blocks, Tensor[] out) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(playground, CPU, m) {
  m.impl("repack_q4_0", &repack_q4_0);
  m.impl("repack_q4_1", &repack_q4_1);
  m.impl("repack_q4_k", &repack_q4_k);
  m.impl("repack_q5_0", &repack_q5_0);
  m.impl("repack_q8_0", &repack_q8_0);
  m.impl("repack_q6_k_int6", &repack_q6_k_int6);
  m.impl("gguf_strings", &gguf_strings);
  m.impl("nonfinite_halves", &nonfinite_halves);
}
