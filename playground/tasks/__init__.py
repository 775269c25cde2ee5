"""Per-mode prompt building and presets."""
