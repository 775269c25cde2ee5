"""Model registry and the embedded default model."""
