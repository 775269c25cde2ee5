"""Remote engines: OpenAI-compatible servers (vLLM, SGLang, llama.cpp, Ollama) as models, and `serve`."""
