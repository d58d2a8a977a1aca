"""LLM serving at request level: replica plans (shared with fluid), request tables, the kernel call, results."""
