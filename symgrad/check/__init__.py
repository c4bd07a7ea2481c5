"""Gradient checking of generated code: ``gradcheck`` (the API and report), ``localise`` (which
rule is wrong), ``report`` (the report's text) and ``cost`` (element-wise or projected checks)."""
