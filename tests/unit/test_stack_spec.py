from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.paths import PROJECT_ROOT
from harness.spec.kinds import validate_file
from harness.spec.loader import load_yaml_model
from harness.spec.stack import SimulatorServer, StackSpec


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "stack.yaml"
    p.write_text(text)
    return p


def test_reference_stack_file_is_valid() -> None:
    spec = load_yaml_model(StackSpec, PROJECT_ROOT / "stack" / "stack.yaml")
    assert spec.primary.replicas == 2
    assert spec.fallback.replicas == 1
    assert spec.gateway.replicas == 2
    assert set(spec.toxiproxy.front) == {"primary", "fallback", "redis"}


def test_empty_file_gives_the_defaults_only_when_allowed(tmp_path: Path) -> None:
    assert load_yaml_model(StackSpec, write(tmp_path, ""), allow_empty=True) == StackSpec()


def test_every_problem_is_reported_with_file_and_field(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "primary:\n  replicas: two\n  sever: {}\ngateway:\n  settings:\n"
        "    rate_limit: {requests_per_minute: 0}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_yaml_model(StackSpec, p)
    text = str(info.value)
    assert str(p) in text
    assert "primary.replicas" in text and "'two'" in text
    assert "primary.sever: unknown field" in text
    assert "gateway.settings.rate_limit.requests_per_minute" in text
    assert len(info.value.problems) == 3


def test_unknown_server_kind_lists_the_valid_ones(tmp_path: Path) -> None:
    p = write(tmp_path, "primary:\n  server: {kind: tgi}\n")
    with pytest.raises(ConfigError) as info:
        load_yaml_model(StackSpec, p)
    assert "llama_cpp" in str(info.value) and "simulator" in str(info.value)


def test_field_errors_inside_a_server_name_the_field_not_the_tag(tmp_path: Path) -> None:
    p = write(tmp_path, "primary:\n  server: {kind: simulator, seeed: 3}\n")
    with pytest.raises(ConfigError) as info:
        load_yaml_model(StackSpec, p)
    assert "primary.server.seeed: unknown field" in str(info.value)


def test_vllm_requires_the_docker_provider(tmp_path: Path) -> None:
    p = write(tmp_path, "primary:\n  server: {kind: vllm}\n")
    with pytest.raises(ConfigError, match="needs provider 'docker'"):
        load_yaml_model(StackSpec, p)
    ok = write(tmp_path, "provider: docker\nprimary:\n  server: {kind: vllm}\n")
    assert load_yaml_model(StackSpec, ok).primary.server.kind == "vllm"


def test_simulator_pool(tmp_path: Path) -> None:
    p = write(tmp_path, "primary:\n  server: {kind: simulator, time_to_first_token_ms: 5}\n")
    server = load_yaml_model(StackSpec, p).primary.server
    assert isinstance(server, SimulatorServer) and server.time_to_first_token_ms == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "expected a mapping"),
        ("primary: [unclosed\n", "not valid YAML"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_yaml_model(StackSpec, write(tmp_path, text))


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml_model(StackSpec, "/nonexistent/stack.yaml")


def test_validate_file_rejects_an_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown kind 'stak'"):
        validate_file(write(tmp_path, "kind: stak\n"))


def test_validate_file_reads_a_file_without_kind_by_what_it_holds(tmp_path: Path) -> None:
    # chaos/README.md calls `kind` optional: an experiment written without it validates.
    experiment = "title: t\nfault: {kind: proxy_down, targets: [primary-0]}\n"
    assert validate_file(write(tmp_path, experiment)) == "experiment"
    # A file that is none of the kinds names the kind it was read as, and the choices.
    with pytest.raises(ConfigError) as e:
        validate_file(write(tmp_path, "title: t\nworkload: {max_tokens: 4}\n"))
    assert "kind: absent, so the file was read as a stack spec; name its kind" in str(e.value)


def test_experiment_overrides_merge_into_what_the_user_set_only(tmp_path: Path) -> None:
    from harness.spec.experiment import apply_stack_overrides
    from harness.spec.images import ImageMap, resolve_image_map

    spec = load_yaml_model(StackSpec, PROJECT_ROOT / "tests" / "fixtures" / "sim-stack.yaml")
    out = apply_stack_overrides(
        spec,
        [
            {"prometheus": {"error_rate_window": "15s"}},
            {"gateway": {"settings": {"breaker": {"recovery_timeout_s": 3}}}},
        ],
        "exp.yaml",
    )
    assert out.prometheus.error_rate_window == "15s"
    assert out.gateway.settings.breaker.recovery_timeout_s == 3
    assert out.primary == spec.primary and out.fallback == spec.fallback
    # Images the user never set still defer to an image-map file (a built one, say).
    assert out.images.model_fields_set == set()
    built = tmp_path / "images.yaml"
    built.write_text("nginx: llm-deploy-gate/nginx:local\n")
    assert resolve_image_map(out.images, built).nginx.ref == "llm-deploy-gate/nginx:local"
    assert resolve_image_map(out.images, built).redis == ImageMap().redis


def test_a_bad_experiment_override_names_its_source() -> None:
    from harness.spec.experiment import apply_stack_overrides

    with pytest.raises(ConfigError) as err:
        apply_stack_overrides(StackSpec(), [{"gateway": {"replicas": "two"}}], "exp.yaml")
    assert "exp.yaml" in str(err.value) and "gateway.replicas" in str(err.value)
