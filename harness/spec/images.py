"""Which container image runs each service (docker provider).

Defaults are the upstream images; a user points any entry at a private registry in the stack
spec's `images:` section or in an image-map YAML file. `harness images build` writes such a file
(`.tools/images.yaml`) for machines with no registry; the docker provider reads it when present.
Precedence: defaults < image-map file < fields set in the stack spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import field_validator, model_validator

from harness.spec.base import Strict


class ImageRef(Strict):
    """One image and how to run a service's command line in it."""

    ref: str
    # Program that replaces the service's argv[0] in the container; None: argv[0]'s basename,
    # looked up on the image's PATH. Set it where the upstream name differs from Debian's
    # (prometheus-alertmanager vs /bin/alertmanager) or the binary is off PATH (/app/llama-server).
    executable: str | None = None
    # Request every GPU (device_requests) and share the host IPC namespace (vLLM's shared memory).
    gpu: bool = False
    # Host environment variables copied into the container when set (tokens for model hubs).
    pass_env: tuple[str, ...] = ()
    # Run as the caller's uid:gid so files written into the run dir stay the caller's.
    as_host_user: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        # `nginx: registry.local/nginx:1.27` is shorthand for `nginx: {ref: ...}`.
        return {"ref": data} if isinstance(data, str) else data

    @field_validator("ref")
    @classmethod
    def _ref_not_blank(cls, v: str) -> str:
        if not v.strip() or any(c.isspace() for c in v):
            raise ValueError(f"image reference {v!r} must be non-empty with no whitespace")
        return v


class ImageMap(Strict):
    """Image per ServiceDef.image key. Model-server keys equal the server kinds."""

    llama_cpp: ImageRef = ImageRef(
        ref="ghcr.io/ggml-org/llama.cpp:server", executable="/app/llama-server"
    )
    simulator: ImageRef = ImageRef(
        ref="ghcr.io/llm-d/llm-d-inference-sim:v0.10.2", executable="/app/llm-d-inference-sim"
    )
    # The service's argv is `vllm serve MODEL ...`; the image's own entrypoint is replaced.
    vllm: ImageRef = ImageRef(
        ref="vllm/vllm-openai:v0.11.0",
        gpu=True,
        pass_env=("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
        as_host_user=False,  # the image keeps its caches under /root
    )
    # No upstream image exists: `harness images build --only gateway` builds it (Python + deps;
    # the project source is bind-mounted).
    gateway: ImageRef = ImageRef(ref="llm-deploy-gate/gateway:local")
    nginx: ImageRef = ImageRef(ref="nginx:1.27")
    redis: ImageRef = ImageRef(ref="redis:7.2")
    toxiproxy: ImageRef = ImageRef(ref="ghcr.io/shopify/toxiproxy:2.12.0", executable="/toxiproxy")
    victoria_logs: ImageRef = ImageRef(
        ref="victoriametrics/victoria-logs:v1.52.1", executable="/victoria-logs-prod"
    )
    vlagent: ImageRef = ImageRef(ref="victoriametrics/vlagent:v1.52.1", executable="/vlagent-prod")
    prometheus: ImageRef = ImageRef(ref="prom/prometheus:v2.53.4", executable="/bin/prometheus")
    alertmanager: ImageRef = ImageRef(
        ref="prom/alertmanager:v0.27.0", executable="/bin/alertmanager"
    )
    nginx_exporter: ImageRef = ImageRef(
        ref="nginx/nginx-prometheus-exporter:1.4.2",
        executable="/usr/bin/nginx-prometheus-exporter",
    )
    redis_exporter: ImageRef = ImageRef(
        ref="oliver006/redis_exporter:v1.67.0", executable="/redis_exporter"
    )

    def get(self, key: str) -> ImageRef:
        if key not in type(self).model_fields:
            valid = ", ".join(sorted(type(self).model_fields))
            raise KeyError(f"no image {key!r} in the image map; valid: {valid}")
        value: ImageRef = getattr(self, key)
        return value

    def overlay(self, other: ImageMap) -> ImageMap:
        """This map with the fields `other` sets explicitly, entry by entry.

        Field by field, so `vllm: my-registry/vllm:tag` keeps the GPU request of the default,
        and `alertmanager: {ref: ..., executable: null}` drops the upstream executable.
        """
        updates: dict[str, ImageRef] = {}
        for key in other.model_fields_set:
            theirs: ImageRef = getattr(other, key)
            mine: ImageRef = getattr(self, key)
            fields = {f: getattr(theirs, f) for f in theirs.model_fields_set}
            updates[key] = mine.model_copy(update=fields)
        return self.model_copy(update=updates)


def default_image_map_file() -> Path:
    from harness.paths import tools_dir  # local: keeps this module free of I/O at import

    return tools_dir() / "images.yaml"


def load_image_map(path: Path) -> ImageMap:
    """Read an image-map YAML file (keys as in ImageMap; values a ref string or an ImageRef)."""
    from harness.spec.loader import load_yaml_model

    return load_yaml_model(ImageMap, path)


def resolve_image_map(spec_images: ImageMap | None = None, file: Path | None = None) -> ImageMap:
    """Defaults, then the image-map file (the built one by default, if present), then the spec."""
    result = ImageMap()
    path = file if file is not None else default_image_map_file()
    if file is not None or path.is_file():
        result = result.overlay(load_image_map(path))
    if spec_images is not None:
        result = result.overlay(spec_images)
    return result
