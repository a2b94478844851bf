"""Pydantic models of what a user writes: stack, gateway settings (later load, faults, gate)."""

from harness.spec.gateway import GatewayRuntimeConfig, GatewaySettings
from harness.spec.loader import load_yaml_model, parse_model
from harness.spec.stack import StackSpec

__all__ = [
    "GatewayRuntimeConfig",
    "GatewaySettings",
    "StackSpec",
    "load_yaml_model",
    "parse_model",
]
