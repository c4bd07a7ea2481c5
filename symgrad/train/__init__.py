"""Training: ``step`` (``compile_step``, the fused forward + backward + update)."""
