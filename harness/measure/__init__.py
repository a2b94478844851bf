"""Per-request samples -> numbers: exact percentiles, time series, windows, SLOs, server view."""
