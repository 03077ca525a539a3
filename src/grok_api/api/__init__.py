"""The HTTP surfaces: one module per surface, each a FastAPI router."""
