"""Per mode: prompt building, parsing, presets, and each mode's request and run record."""
