"""How the harness talks to the services it gates: one client per service API."""
