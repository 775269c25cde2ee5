"""The CPU fast path: quantized weights, the compiled int4 kernel and the lean decode step."""
