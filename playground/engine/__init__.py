"""Inference engines (torch, imported lazily). Nothing here imports Qt."""
