"""Container images for the docker provider: local builds (no registry) and a private dockerd."""
