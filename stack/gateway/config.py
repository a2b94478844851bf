"""Load the runtime config named by GATEWAY_CONFIG and merge API keys from the environment."""

from __future__ import annotations

import os
from pathlib import Path

from harness.spec.gateway import GatewayRuntimeConfig

CONFIG_ENV = "GATEWAY_CONFIG"
API_KEYS_ENV = "GATEWAY_API_KEYS"


def load_runtime_config(path: str | Path | None = None) -> GatewayRuntimeConfig:
    if path is None:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise RuntimeError(
                f"{CONFIG_ENV} is not set: point it at a JSON GatewayRuntimeConfig "
                "(see harness/spec/gateway.py)"
            )
    return GatewayRuntimeConfig.model_validate_json(Path(path).read_text())


def api_keys(config: GatewayRuntimeConfig) -> tuple[str, ...]:
    """Keys from settings plus GATEWAY_API_KEYS (comma-separated), empty entries dropped."""
    from_env = [k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",")]
    keys = [*config.settings.auth.api_keys, *(k for k in from_env if k)]
    return tuple(dict.fromkeys(keys))
