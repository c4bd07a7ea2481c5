"""The C printer: a Program as a C99 kernel and a CPython extension around it."""
