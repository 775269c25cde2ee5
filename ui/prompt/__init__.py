"""The Prompt tab: source text + prompt, streamed completion with token probabilities."""
