// Torch-side helpers shared by ops.cpp (the matmul ops), gemm_ops.cpp (prefill's GEMM) and decoder_step.cpp (the
// fused decode step).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <vector>

#include "kernels.h"

namespace pg {

constexpr int64_t kGemmMinT = 16;  // from this many rows of x on, the GEMM (linear_gemm) instead of the gemv

// A buffer kept for the next call of this thread: prefill calls the GEMM hundreds of times with the same shapes, and
// a fresh multi-MiB allocation each time costs page faults (the kernel zeroes every new page). Plain memory, wrapped
// per call (a kept tensor made under InferenceMode could not be written outside it).
template <typename T>
inline T* reused(std::vector<T>& slot, int64_t n) {
  if (static_cast<int64_t>(slot.size()) < n) slot.resize(static_cast<size_t>(n));
  return slot.data();
}

// The segments of a (fused) linear: weights flat, int4 as (qweight, scales, offsets), int8 as (qweight, scales);
// kinds[i] = kInt4 or kInt8. Checks shapes against K; returns them with their total rows in *n_total.
std::vector<QSeg> parse_segs(at::TensorList weights, c10::ArrayRef<int64_t> kinds, int64_t K, int64_t* n_total,
                             size_t* used = nullptr);

// out[t, :] (row stride ldo) = x[t] @ [seg0; seg1; ...]^T for T rows of x (fp32, row-major [T, K]).
// T <= kGemmMinT: the weights are read once for all rows, rows split over threads (the decode path).
void linear_gemv(int isa, const float* x, int64_t T, int64_t K, const std::vector<QSeg>& segs, bool int8_x,
                 float* out, int64_t ldo);
// Whether linear_gemm can multiply in bf16 (AVX512-BF16 on the avx512 path, torch with oneDNN), and whether it does
// (reduced precision asked for, and exact fp32 not set).
bool bf16_gemm_available(int isa);
bool gemm_in_bf16(int isa, bool reduced);
// Whether linear_gemm multiplies in integers (the AVX2 path, reduced precision asked for, exact fp32 not set):
// gemm_rows, x rounded as decode rounds it (int16 in the fp32 mode, int8 in the int8 mode); int4 weights, and
// int8 ones in the fp32 mode.
bool gemm_in_integers(int isa, bool reduced);
// Whether linear_gemm multiplies any of these segments in integers (then it reads x as a contiguous [T, K]).
bool gemm_takes_integers(int isa, const std::vector<QSeg>& segs, bool int8_x, bool reduced);
// Larger T: gemm_rows where gemm_in_integers takes the weights, else tiles of rows dequantized (fp32, or bf16 where
// gemm_in_bf16) and multiplied by BLAS; no full-precision copy of the weights is ever made.
void linear_gemm(int isa, const at::Tensor& x, const std::vector<QSeg>& segs, bool int8_x, bool reduced, float* out,
                 int64_t ldo);

}  // namespace pg
