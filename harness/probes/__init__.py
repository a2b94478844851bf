"""Functional probes: short, exact requests that prove one practice of the stack each.

Each probe returns a CheckResult listing every way the stack fell short, never only the first.
"""
