"""Functional probes: short, exact requests that prove one practice of the stack each.

Each probe measures and hands typed evidence to its judge in harness/verdict/, whose CheckResult
(every way the stack fell short, never only the first) it returns.
"""
