"""Elementwise ops declared by SymPy expressions (``symgrad.elementwise``), with derived rules."""
