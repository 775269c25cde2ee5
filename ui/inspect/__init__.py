"""The Inspect tab: attention per layer and head, layer-by-layer predictions (logit lens), and probes."""
