"""Compiled CPU kernels (built on first use with torch's C++ extension machinery, with stock-torch fallbacks)."""
