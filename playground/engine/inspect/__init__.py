"""See inside a model: attention weights and each layer's prediction (the "logit lens").

These run on a transformers model loaded with eager attention (``model.load_inspect_model``), kept apart from the
model the Prompt tab decodes with (which may run on the fast path, or come from a GGUF file): inspection needs
every layer's attention weights and hidden states, which fused kernels never materialise.
"""
