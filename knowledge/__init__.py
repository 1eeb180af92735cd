"""The memory of warroom: SQL knowledge base, data access, embedder and vector index.

Never imports ``bot`` or ``skills``.
"""
