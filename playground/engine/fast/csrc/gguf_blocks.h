// Helpers shared by the GGUF repacks (gguf_repack.cpp: int4, int6 and the exact int8 types; gguf_int8.cpp: the
// types re-quantized to int8 and IQ4's table values).
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <cstring>
#include <tuple>

#include "kernels.h"

namespace pg::gguf {

inline uint16_t to_half(float f) {
  uint16_t h;
  pg::floats_to_halves(pg::kScalar, &f, &h, 1);
  return h;
}

// f(i, block i's bytes) for every block of a [rows, blocks, size] uint8 tensor, split over the threads.
template <class F>
inline void for_blocks(const at::Tensor& blocks, int64_t size, const char* name, int64_t grain, F f) {
  TORCH_CHECK(blocks.device().is_cpu() && blocks.scalar_type() == at::kByte && blocks.dim() == 3 &&
                  blocks.size(2) == size && blocks.is_contiguous(),
              name, ": blocks must be contiguous uint8 [rows, blocks, ", size, "]");
  const uint8_t* src = blocks.data_ptr<uint8_t>();
  at::parallel_for(0, blocks.size(0) * blocks.size(1), grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) f(i, src + i * size);
  });
}

// An output with `per_block` entries per block in each row: out[i] when given (the caller's memory, e.g. rows of a
// larger tensor repacked a piece at a time), else a new tensor.
inline at::Tensor per_block(const at::Tensor& blocks, int64_t per_block, at::ScalarType type,
                            at::TensorList out, size_t i) {
  if (out.empty()) return at::empty({blocks.size(0), blocks.size(1) * per_block}, blocks.options().dtype(type));
  TORCH_CHECK(out.size() > i && out[i].scalar_type() == type && out[i].is_contiguous() && out[i].dim() == 2 &&
                  out[i].size(0) == blocks.size(0) && out[i].size(1) == blocks.size(1) * per_block,
              "repack: out[", i, "] must be a contiguous ", at::toString(type), " [", blocks.size(0), ", ",
              blocks.size(1) * per_block, "]");
  return out[i];
}

inline uint16_t* halves(at::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr()); }

// The int8 format's tensors for `groups` groups of 32 per block, and pointers to fill them.
struct Int8Out {
  at::Tensor q, sc;
  int8_t* qp;
  uint16_t* sp;
  Int8Out(const at::Tensor& blocks, int64_t groups, at::TensorList out)
      : q(per_block(blocks, 32 * groups, at::kChar, out, 0)), sc(per_block(blocks, groups, at::kHalf, out, 1)),
        qp(q.data_ptr<int8_t>()), sp(halves(sc)) {}
  std::tuple<at::Tensor, at::Tensor> result() const { return {q, sc}; }
};

// The fp16 value stored at p (a block's d / dmin: unaligned).
inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return pg::half_to_float(h);
}

// Q4_K / Q5_K: sub-block j's (scale, min) from the 12 bytes of 6-bit pairs at s6.
struct K4Scale {
  int scale, min;
};
inline K4Scale k4_scale(const uint8_t* s6, int j) {
  return j < 4 ? K4Scale{s6[j] & 63, s6[j + 4] & 63}
               : K4Scale{(s6[j + 4] & 15) | ((s6[j - 4] >> 6) << 4), (s6[j + 4] >> 4) | ((s6[j] >> 6) << 4)};
}

}  // namespace pg::gguf
