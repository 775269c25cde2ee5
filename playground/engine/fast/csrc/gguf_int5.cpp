// GGUF's 5-bit types repacked into the int5 format (kernels.h) at their five bits (where the AVX2 int5 kernel runs;
// elsewhere they are re-quantized to int8: gguf_repack.cpp, gguf_int8.cpp):
//   Q5_0 [rows, blocks, 22] -> int5, no offsets: q as stored (its -16 implied), scale d;
//   Q5_1 [rows, blocks, 24] -> int5: q, scale d, offset m;
//   Q5_K [rows, blocks, 176] -> int5: each 32-weight sub-block a group, its parameters as the block scales them
//        (QSeg::kparams, as Q4_K's); q = its nibble + 16 * its high bit.
// A row's fifth bits of 8 groups share 32 bytes, so the work is split by (row, 8 groups).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include "gguf_blocks.h"
#include "kernels.h"

namespace {

using namespace pg::gguf;  // NOLINT: this file's helpers

using Int5Result = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

// fill(row, g0, g1, qrow, scales, offsets, kparams): groups [g0, g1) of a row, given the row's output (zeroed) and
// params: fp16 scales and offsets (none: symmetric), or with `kquant` the row's K-quant parameters (QSeg::kparams).
template <class F>
Int5Result repack_int5(const at::Tensor& blocks, int64_t size, int64_t per_block, bool symmetric, const char* name,
                       at::TensorList out, F fill, bool kquant = false) {
  TORCH_CHECK(blocks.device().is_cpu() && blocks.scalar_type() == at::kByte && blocks.dim() == 3 &&
                  blocks.size(2) == size && blocks.is_contiguous(),
              name, ": blocks must be contiguous uint8 [rows, blocks, ", size, "]");
  const int64_t rows = blocks.size(0), G = blocks.size(1) * per_block, rb = pg::int5_row_bytes(G * pg::kGroup);
  const auto opts = blocks.options();
  const auto given = [&](size_t i, at::ScalarType type, int64_t cols) {
    if (out.empty()) return at::Tensor();
    TORCH_CHECK(out.size() > i && out[i].scalar_type() == type && out[i].is_contiguous() &&
                    out[i].numel() == rows * cols,
                name, ": out[", i, "] must be a contiguous ", at::toString(type), " [", rows, ", ", cols, "]");
    return out[i];
  };
  const bool none = symmetric || kquant;  // no offsets tensor
  const int64_t kp_row = G / pg::kSuperGroups * pg::kSuperBytes;
  at::Tensor q = given(0, at::kByte, rb), sc = kquant ? given(1, at::kByte, kp_row) : given(1, at::kHalf, G);
  at::Tensor of = none ? at::Tensor() : given(2, at::kHalf, G);
  if (!q.defined()) q = at::empty({rows, rb}, opts);
  if (!sc.defined()) sc = kquant ? at::empty({rows, kp_row}, opts) : at::empty({rows, G}, opts.dtype(at::kHalf));
  if (!of.defined()) of = at::empty(none ? at::IntArrayRef{0} : at::IntArrayRef{rows, G}, opts.dtype(at::kHalf));
  uint8_t* qp = q.data_ptr<uint8_t>();
  uint16_t* sp = kquant ? nullptr : halves(sc);
  uint8_t* kp = kquant ? sc.data_ptr<uint8_t>() : nullptr;
  uint16_t* op = none ? nullptr : halves(of);
  const uint8_t* src = blocks.data_ptr<uint8_t>();
  const int64_t quads = (G + 7) / 8, row_in = blocks.size(1) * size;
  at::parallel_for(0, rows * quads, 64, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      const int64_t r = u / quads, g0 = u % quads * 8, g1 = std::min(G, g0 + 8);
      uint8_t* qrow = qp + r * rb;
      std::memset(qrow + g0 / 8 * pg::kInt5QuadBytes, 0, 32);  // the quad's fifth bits (Q5_0 / Q5_1: ORed in)
      fill(src + r * row_in, g0, g1, qrow, sp ? sp + r * G : nullptr, op ? op + r * G : nullptr,
           kp ? kp + r * kp_row : nullptr);
    }
  });
  return {q, sc, of};
}

// Bits 0-7 of v spread to bytes 0-7 (each 0 or 1).
constexpr uint64_t spread8(unsigned v) {
  uint64_t out = 0;
  for (int i = 0; i < 8; ++i) out |= static_cast<uint64_t>((v >> i) & 1) << (8 * i);
  return out;
}
struct SpreadTable {
  uint64_t v[256];
  constexpr SpreadTable() : v() {
    for (unsigned i = 0; i < 256; ++i) v[i] = spread8(i);
  }
};
constexpr SpreadTable kSpread;

// A Q5_0 / Q5_1 block as int5 group g: its nibble bytes are int5's as they are (byte j: q[j] low, q[j + 16] high);
// qh's bit j (the fifth bit of q[j]) goes to bit 2r of fifth-bit byte 16s + j % 16 (j < 16), bit 2r + 1 for
// j >= 16 (r, s: the group's pair in its quad and its place in the pair).
void q5_group(uint8_t* row, int64_t g, const uint8_t* qh_at, const uint8_t* qs) {
  uint8_t* quad = row + g / 8 * pg::kInt5QuadBytes;
  std::memcpy(quad + 32 + g % 8 * 16, qs, 16);
  uint32_t qh;
  std::memcpy(&qh, qh_at, 4);
  const int r2 = static_cast<int>(g % 8 / 2 * 2);
  uint64_t fifth[2];
  std::memcpy(fifth, quad + g % 2 * 16, 16);
  fifth[0] |= kSpread.v[qh & 255] << r2 | kSpread.v[(qh >> 16) & 255] << (r2 + 1);
  fifth[1] |= kSpread.v[(qh >> 8) & 255] << r2 | kSpread.v[qh >> 24] << (r2 + 1);
  std::memcpy(quad + g % 2 * 16, fifth, 16);
}

Int5Result repack_q5_0_int5(const at::Tensor& blocks, at::TensorList out) {
  return repack_int5(blocks, 22, 1, true, "repack_q5_0_int5", out,
                     [](const uint8_t* row, int64_t g0, int64_t g1, uint8_t* q, uint16_t* sc, uint16_t*, uint8_t*) {
                       for (int64_t g = g0; g < g1; ++g) {
                         const uint8_t* blk = row + g * 22;
                         std::memcpy(sc + g, blk, 2);
                         q5_group(q, g, blk + 2, blk + 6);
                       }
                     });
}

Int5Result repack_q5_1_int5(const at::Tensor& blocks, at::TensorList out) {
  return repack_int5(blocks, 24, 1, false, "repack_q5_1_int5", out,
                     [](const uint8_t* row, int64_t g0, int64_t g1, uint8_t* q, uint16_t* sc, uint16_t* of, uint8_t*) {
                       for (int64_t g = g0; g < g1; ++g) {
                         const uint8_t* blk = row + g * 24;
                         std::memcpy(sc + g, blk, 2);
                         std::memcpy(of + g, blk + 2, 2);
                         q5_group(q, g, blk + 4, blk + 8);
                       }
                     });
}

// A Q5_K block is one quad: sub-block j is group j. Its nibbles as Q4_K's (chunk c: sub-block 2c low, 2c + 1 high)
// re-laid as int5's; qh[l]'s bit j (sub-block j's value l) goes to fifth-bit byte 16 (j % 2) + l % 16, bit
// 2 (j / 2) + l / 16: byte jj of the first 16 takes qh[jj]'s even bits (to even places) and qh[jj + 16]'s (to odd
// ones), byte 16 + jj their odd bits.
Int5Result repack_q5_k_int5(const at::Tensor& blocks, at::TensorList out) {
  return repack_int5(blocks, 176, 8, false, "repack_q5_k_int5", out,
                     [](const uint8_t* row, int64_t g0, int64_t, uint8_t* q, uint16_t*, uint16_t*, uint8_t* kp) {
                       const uint8_t* blk = row + g0 / 8 * 176;
                       k_params(blk, kp + g0 / 8 * pg::kSuperBytes);
                       const uint8_t *qh = blk + 16, *qs = blk + 48;
                       uint8_t* quad = q + g0 / 8 * pg::kInt5QuadBytes;
                       for (int jj = 0; jj < 16; ++jj) {
                         quad[jj] = static_cast<uint8_t>((qh[jj] & 0x55) | (qh[jj + 16] & 0x55) << 1);
                         quad[16 + jj] = static_cast<uint8_t>((qh[jj] >> 1 & 0x55) | (qh[jj + 16] & 0xAA));
                       }
                       uint8_t* nib = quad + 32;
                       for (int c = 0; c < 4; ++c) {
                         k_nibbles(qs + 32 * c, qs + 32 * c + 16, nib + 32 * c, nib + 32 * c + 16);
                       }
                     },
                     /*kquant=*/true);
}

// Q5_K blocks [rows, blocks, 176] read in place (QSeg::k5): only their parameters are written, as kparams
// [rows, blocks * kSuperBytes]; the values stay in the file's blocks.
at::Tensor q5_k_params(const at::Tensor& blocks) {
  TORCH_CHECK(blocks.device().is_cpu() && blocks.scalar_type() == at::kByte && blocks.dim() == 3 &&
                  blocks.size(2) == pg::kQ5KBlockBytes && blocks.is_contiguous(),
              "q5_k_params: blocks must be contiguous uint8 [rows, blocks, 176]");
  const int64_t n = blocks.size(0) * blocks.size(1);
  at::Tensor out = at::empty({blocks.size(0), blocks.size(1) * pg::kSuperBytes}, blocks.options());
  const uint8_t* src = blocks.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  at::parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) k_params(src + b * pg::kQ5KBlockBytes, dst + b * pg::kSuperBytes);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(playground, m) {
  m.def("repack_q5_0_int5(Tensor blocks, Tensor[] out) -> (Tensor, Tensor, Tensor)");
  m.def("repack_q5_1_int5(Tensor blocks, Tensor[] out) -> (Tensor, Tensor, Tensor)");
  m.def("repack_q5_k_int5(Tensor blocks, Tensor[] out) -> (Tensor, Tensor, Tensor)");
  m.def("q5_k_params(Tensor blocks) -> Tensor");
}

TORCH_LIBRARY_IMPL(playground, CPU, m) {
  m.impl("repack_q5_0_int5", &repack_q5_0_int5);
  m.impl("repack_q5_1_int5", &repack_q5_1_int5);
  m.impl("repack_q5_k_int5", &repack_q5_k_int5);
  m.impl("q5_k_params", &q5_k_params);
}
