// How the decode loops ask for weight rows (and their parameters) ahead of reading them.
#pragma once

#include <cstdint>

#include "kernels.h"
#include "simd.h"

namespace pg {

constexpr int64_t kPrefetchBytes = 4096;  // how far ahead of the current weight row to prefetch
constexpr int64_t kPrefetchBytesInt6 = 8192;  // int6 rows (set with its kernel's measurements, not tuned alone)
constexpr int64_t kPrefetchBurst = 1024;  // VNNI decode: longer rows are prefetched this much at a time

#if PG_X86

// Row n's lines, all at once: the loops that do not stream call it at a row's start for a row a few ahead
// (AVX512-VNNI: rows of up to kPrefetchBurst bytes).
PG_INLINE void prefetch_row(const QSeg& s, int64_t n, int64_t row_bytes) {
  if (n >= s.N) return;
  const char* q = reinterpret_cast<const char*>(s.q + n * row_bytes);
  // Into L2, not L1: 4 KB ahead is more lines than L1 can have in flight, and a prefetch that waits for a free
  // miss buffer stalls the loop (int4 rows from DRAM, one thread, int8 x: 8.9 -> 14.5 GB/s on a Zen 4 EPYC; no
  // prefetch at all: 12.0).
  for (int64_t off = 0; off < row_bytes; off += 64) _mm_prefetch(q + off, _MM_HINT_T2);
}

// The AVX512-VNNI decode loops on rows longer than kPrefetchBurst: kPrefetchBurst bytes `ahead` of the row's bytes
// [o0, o1) that a step reads, at the row's start and each time the reads cross a burst's end. A whole long row's
// lines at once (prefetch_row) outran the miss buffers: 4-5.5 KB rows (Llama-3.2-1B's and Qwen2.5-3B's down
// projections) read 10-25% slower than 1 KB ones; 8-line bursts as the loop went were no better, 16 lines as fast
// on every length (Qwen2.5-3B Q4_K_M decode +7%, Llama-3.2-1B +2-7%, alternating in one process).
PG_INLINE void prefetch_burst(const QSeg& s, const uint8_t* row, int64_t o0, int64_t o1, int64_t ahead) {
  if (o0 != 0 && o0 / kPrefetchBurst == o1 / kPrefetchBurst) return;
  const char* p = reinterpret_cast<const char*>(row + (o0 == 0 ? 0 : o1 / kPrefetchBurst * kPrefetchBurst) + ahead);
  const char* end = reinterpret_cast<const char*>(s.q + s.N * row_bytes(s));  // not past the segment
  for (int64_t off = 0; off < kPrefetchBurst && p + off < end; off += 64) _mm_prefetch(p + off, _MM_HINT_T2);
}

// The AVX2 decode loops instead prefetch kPrefetchBytes ahead of what they read, a line at a time as they go: rows
// follow each other in memory, so this runs on into the next rows. A whole row's lines at its start came in a
// burst that outran the miss buffers on long rows (Qwen2.5-3B's down projection, 5.5 KB a row: 12-14 -> 15-21
// GB/s; its decode 9.0-9.4 -> 10.6-10.9 tok/s on a 2-core Zen 3, alternating processes).
PG_INLINE void prefetch_ahead(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T2);
}

// The parameters of rows [n0, n1) (K-quant codes, or fp16 scales and offsets), into L1.
inline void prefetch_params(const QSeg& s, int64_t G, int64_t n0, int64_t n1) {
  if (n1 <= n0) return;
  if (s.kparams) {
    const int64_t bytes = param_bytes_per_row(s, G);
    const char* p = reinterpret_cast<const char*>(s.kparams + n0 * bytes);
    for (int64_t off = 0; off < (n1 - n0) * bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    return;
  }
  const char* sc = reinterpret_cast<const char*>(s.scales + n0 * G);
  const char* o = reinterpret_cast<const char*>(s.offsets ? s.offsets + n0 * G : nullptr);
  for (int64_t off = 0; off < (n1 - n0) * G * 2; off += 64) {
    _mm_prefetch(sc + off, _MM_HINT_T0);
    if (o) _mm_prefetch(o + off, _MM_HINT_T0);
  }
}

#else
inline void prefetch_params(const QSeg&, int64_t, int64_t, int64_t) {}
#endif

}  // namespace pg
