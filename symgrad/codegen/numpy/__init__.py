"""The NumPy printer: a Program as a Python module that imports only NumPy."""
