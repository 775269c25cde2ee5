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
#include "simd.h"

namespace pg::gguf {

inline uint16_t to_half(float f) {
  uint16_t h;
  pg::floats_to_halves(pg::kScalar, &f, &h, 1);
  return h;
}

// K-quant nibbles (Q4_K, Q5_K, Q6_K: byte j of a run holds value j low, value j + 32 high) as int4's bytes
// (kernels.h): from two 16-byte runs a and b, lo[j] = a[j]'s low nibble | b[j]'s << 4 (one group), hi[j] = their
// high nibbles (the next group). SSE2 on x86-64 (a byte at a time took ~2x the rest of a Q6_K block's repack).
inline void k_nibbles(const uint8_t* a, const uint8_t* b, uint8_t* lo, uint8_t* hi) {
#if PG_X86
  const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a));
  const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
  const __m128i m0f = _mm_set1_epi8(0x0F), mf0 = _mm_set1_epi8(static_cast<char>(0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(lo),
                   _mm_or_si128(_mm_and_si128(va, m0f), _mm_slli_epi16(_mm_and_si128(vb, m0f), 4)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(hi),
                   _mm_or_si128(_mm_and_si128(_mm_srli_epi16(va, 4), m0f), _mm_and_si128(vb, mf0)));
#else
  for (int j = 0; j < 16; ++j) {
    lo[j] = static_cast<uint8_t>((a[j] & 15) | (b[j] & 15) << 4);
    hi[j] = static_cast<uint8_t>((a[j] >> 4) | (b[j] & 0xF0));
  }
#endif
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

// A Q4_K / Q5_K block's parameters as QSeg::kparams holds them (kSuperBytes): the 8 scale codes, the 8 min codes,
// then d and dmin as stored.
inline void k_params(const uint8_t* blk, uint8_t* out) {
  for (int j = 0; j < 8; ++j) {
    const K4Scale k = k4_scale(blk + 4, j);
    out[j] = static_cast<uint8_t>(k.scale);
    out[8 + j] = static_cast<uint8_t>(k.min);
  }
  std::memcpy(out + 16, blk, 4);
}

}  // namespace pg::gguf
