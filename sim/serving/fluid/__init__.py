"""LLM serving at fluid fidelity: per-bin arrival rates served by capacity, latency from queueing."""
