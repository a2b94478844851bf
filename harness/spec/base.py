"""Base model for every user-written spec: unknown fields are errors, so a typo fails loudly."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
