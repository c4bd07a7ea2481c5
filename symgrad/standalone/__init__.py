"""Standalone export of a traced model: ``export`` (the API and the NumPy module) and
``c_library`` (the dependency-free C library)."""
