"""Faults the harness injects: Toxiproxy toxics, process/container faults, HTTP error faults."""
