"""The model registry: embedded default, user-added folders and GGUF files, HF cache, remote endpoints."""
