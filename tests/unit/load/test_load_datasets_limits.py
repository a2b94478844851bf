"""The datasets users have (the ShareGPT JSON array as well as JSONL, read as a stream, in bounded
memory) and the model's context known before a run (/v1/models, /props; report, skip, clip)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.clients.models import Target, context_of_models, context_of_props, discover_context
from harness.errors import ConfigError
from harness.load.dataset import Conversation, read_conversations, select
from harness.load.limits import (
    ContextCheck,
    counted_how,
    estimate_tokens,
    fit_conversations,
    fit_trace,
)
from harness.load.trace import TraceEntry
from harness.load.workload import WorkloadGenerator
from harness.spec.load import Dataset, LoadSpec, Workload


def sharegpt_entry(i: int, human: str, gpt: str = "fine") -> dict[str, object]:
    return {
        "id": f"sg-{i}",
        "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}],
    }


# --- the ShareGPT JSON array -------------------------------------------------------------------
def test_a_sharegpt_json_array_is_read_with_its_ids_and_bad_entries_counted_once(
    tmp_path: Path,
) -> None:
    entries = [
        sharegpt_entry(0, "hello there", "hi, how can I help"),
        {"id": "sg-1", "conversations": []},
        {"id": "sg-2", "conversations": [{"from": "gpt", "value": "only an answer"}]},
        {"id": "sg-3", "conversations": [{"from": "human"}]},
        {"id": 4, "conversations": [{"from": "human", "value": "second one"}]},
        {"id": "sg-5", "conversations": []},
        "not even an object",
    ]
    f = tmp_path / "ShareGPT_V3.json"
    f.write_text("\ufeff  \n" + json.dumps(entries, indent=2))
    source = read_conversations(f)
    convs = list(source)
    assert [(c.index, c.id, c.first, c.answer_words) for c in convs] == [
        (1, "sg-0", "hello there", 5),
        (5, "4", "second one", None),
    ]
    assert source.skipped_line() == (
        "5 of 7 entries read skipped: empty 2 (first at entry 2); no user turn 1 (first at "
        "entry 3); malformed turn 1 (first at entry 4); not a conversation 1 (first at entry 7)"
    )
    # The entry's id travels with each request made from it, into the sample.
    w = Workload(dataset=Dataset(path=str(f), order="sequential"))
    g = WorkloadGenerator(w, "m", "sk", 3, worker=0, conversations=convs)
    plans = [g.next_request() for _ in range(2)]
    assert [(p.prompt_id, p.dataset_id) for p in plans] == [("conv-1", "sg-0"), ("conv-5", "4")]


def test_a_file_that_is_not_a_dataset_is_a_config_error_from_its_first_entries(
    tmp_path: Path,
) -> None:
    f = tmp_path / "numbers.json"
    # Not one conversation among the first 100 entries: reading stops there, whatever follows.
    f.write_text(json.dumps([{"text": str(i)} for i in range(100)] + [sharegpt_entry(0, "hi")]))
    with pytest.raises(ConfigError) as err:
        list(read_conversations(f))
    assert err.value.source == str(f)
    first, *rest = err.value.problems
    assert first.location == "workload.dataset.path"
    assert "none of the first 100 entries is a conversation" in first.message
    assert [p.location for p in rest] == [f"entry {i}" for i in range(1, 6)]
    assert '"conversations" or a "messages" list' in rest[0].message
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(ConfigError, match="holds no conversation"):
        list(read_conversations(empty))


def test_json_that_breaks_off_inside_the_array_names_where(tmp_path: Path) -> None:
    f = tmp_path / "cut.json"
    whole = json.dumps([sharegpt_entry(i, f"question {i}") for i in range(3)])
    f.write_text(whole[: whole.index('"sg-2"') + 3])
    source = read_conversations(f)
    got: list[Conversation] = []
    with pytest.raises(ConfigError) as err:
        got.extend(source)
    assert [c.id for c in got] == ["sg-0", "sg-1"]
    assert err.value.problems[0].location == "entry 3"
    assert "not JSON" in err.value.problems[0].message


def _write_sharegpt(path: Path, n: int) -> int:
    """n conversations of about 1.6 kB each (a short question, a long answer), as one array."""
    answer = "an answer of some length " * 60
    with path.open("w") as f:
        f.write("[")
        for i in range(n):
            f.write(
                ("," if i else "") + json.dumps(sharegpt_entry(i, f"question {i} " * 12, answer))
            )
        f.write("]")
    return path.stat().st_size


_READ_WHOLE = """
import json, re, sys
from pathlib import Path
from harness.load.dataset import read_conversations, select
from harness.spec.load import Dataset

def high_water_kb():
    # This process's own peak (VmHWM): getrusage's ru_maxrss starts at the parent's resident
    # size when the parent is larger, which would hide the growth measured here.
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))

marks = [high_water_kb()]
for path in sys.argv[1:]:
    kept = select(read_conversations(Path(path)), Dataset(path=path), seed=1, pool=2_000)
    assert len(kept.conversations) == 2_000
    marks.append(high_water_kb())
# The same measure of a whole-file read, for comparison.
with open(sys.argv[-1], "rb") as f:
    everything = json.load(f)
marks.append(high_water_kb())
print(*marks)
"""


def test_a_large_sharegpt_file_is_read_in_memory_that_does_not_grow_with_it(
    tmp_path: Path,
) -> None:
    small, large = tmp_path / "small.json", tmp_path / "large.json"
    small_mb = _write_sharegpt(small, 7_500) / 1e6
    large_mb = _write_sharegpt(large, 22_500) / 1e6
    assert large_mb > 30
    # The first 100 conversations: reading stops after them.
    tracemalloc.start()
    try:
        kept = select(read_conversations(large), Dataset(path=str(large), limit=100))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(kept.conversations) == 100 and peak < 1e6, peak
    # All of each file read, a pool of 2000 kept (a fresh process: its own high-water mark of
    # resident memory, before and after each file): the file three times the size adds nothing,
    # where json.load of it adds more than its size.
    out = subprocess.run(
        [sys.executable, "-c", _READ_WHOLE, str(small), str(large)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    start_kb, after_small_kb, after_large_kb, json_load_kb = map(int, out.split())
    grew_mb = (after_small_kb - start_kb) / 1e3
    assert after_small_kb - start_kb < small_mb * 1e3 / 4, (grew_mb, small_mb)
    assert after_large_kb - after_small_kb < 2e3, (after_large_kb - after_small_kb) / 1e3
    assert json_load_kb - after_large_kb > large_mb * 1e3
    print(
        f"first 100 of {large_mb:.1f} MB: traced peak {peak / 1e6:.2f} MB; whole files: resident "
        f"memory +{grew_mb:.1f} MB reading {small_mb:.1f} MB, then "
        f"+{(after_large_kb - after_small_kb) / 1e3:.1f} MB more reading {large_mb:.1f} MB; "
        f"json.load of it +{(json_load_kb - after_large_kb) / 1e3:.0f} MB"
    )


# --- what the model servers say ----------------------------------------------------------------
def test_context_from_v1_models_and_props() -> None:
    # llm-d-inference-sim --max-model-len 512 (vLLM's shape).
    sim = {
        "object": "list",
        "data": [
            {"id": "sim-model", "object": "model", "owned_by": "vllm", "max_model_len": 512},
        ],
    }
    assert context_of_models(sim, "sim-model") == 512
    assert context_of_models(sim, "another") == 512  # the only entry with a length
    two = {"data": [{"id": "a", "max_model_len": 1024}, {"id": "b", "max_model_len": 2048}]}
    assert context_of_models(two, "b") == 2048
    # llama-server -c 4096 -np 4: one slot's context (n_ctx_train is the training context).
    llama = {
        "object": "list",
        "data": [
            {
                "id": "SmolLM2.gguf",
                "object": "model",
                "owned_by": "llamacpp",
                "meta": {"n_vocab": 49152, "n_ctx": 1024, "n_ctx_train": 8192},
            }
        ],
    }
    assert context_of_models(llama, "SmolLM2.gguf") == 1024
    # The reference gateway lists names only.
    gateway = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "primary"}]}
    assert context_of_models(gateway, "m") is None
    assert context_of_models({"meta": {"n_ctx_train": 8192}}, "m") is None
    assert context_of_models({"error": "nope"}, "m") is None
    props = {"default_generation_settings": {"n_ctx": 1024, "params": {}}, "total_slots": 4}
    assert context_of_props(props) == 1024
    assert context_of_props({"n_ctx": 1024}) == 1024
    assert context_of_props({"default_generation_settings": {"n_ctx": "big"}}) is None
    assert context_of_props(["not", "an", "object"]) is None


@contextmanager
def answering(routes: dict[str, object]) -> Iterator[str]:
    """A server on 127.0.0.1 answering GET path with routes[path] as JSON (404 otherwise)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path in routes
            body = json.dumps(routes.get(self.path, {"error": "not found"})).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_model_server_is_asked_before_the_gateway_and_silence_is_said() -> None:
    names_only = {"/v1/models": {"data": [{"id": "m", "object": "model"}]}}
    props = {"/props": {"default_generation_settings": {"n_ctx": 2048}}}
    with answering(names_only) as gateway, answering({**names_only, **props}) as llama:
        assert discover_context(Target(url=gateway, tokenizer_url=llama), "m") == (
            2048,
            f"{llama}/props",
        )
        context, said = discover_context(Target(url=gateway), "m")
    assert context is None
    assert said == (
        f"the server did not say its context (asked {gateway}/v1/models, {gateway}/props for "
        "max_model_len or n_ctx)"
    )


# --- counting and fitting ----------------------------------------------------------------------
def test_trace_requests_over_the_context_are_reported_skipped_or_clipped() -> None:
    entries = [TraceEntry(0.0, 100, 20), TraceEntry(0.1, 500, 20), TraceEntry(0.2, 40, 600)]
    report = fit_trace(entries, 512, "report")
    assert (report.items, report.over) == (entries, 2)
    skip = fit_trace(entries, 512, "skip")
    assert (skip.items, skip.over, skip.skipped) == ([entries[0]], 2, 2)
    clip = fit_trace(entries, 512, "clip")
    # Clipped to the context minus max_tokens; max_tokens alone over it cannot be clipped.
    assert [(e.input_tokens, e.output_tokens) for e in clip.items] == [(100, 20), (492, 20)]
    assert (clip.over, clip.clipped, clip.skipped, clip.changed) == (2, 1, 1, {1})
    unknown = fit_trace(entries, None, "skip")
    assert (unknown.items, unknown.over) == (entries, 0)


def conv(
    index: int, text: str, system: str | None = None, answer: int | None = None
) -> Conversation:
    return Conversation(index=index, system=system, turns=(text, "later"), answer_words=answer)


def test_dataset_conversations_are_estimated_or_counted_in_tokens_and_fitted() -> None:
    assert estimate_tokens("abcd" * 10) == 10 and estimate_tokens("abcde") == 2
    short, long_ = conv(1, "word " * 20), conv(2, "word " * 400)  # 25 and 500 tokens estimated
    with_system = conv(3, "word " * 40, system="s" * 800)  # 50 + 200
    w = Workload(max_tokens=64, dataset=Dataset(path="x"))
    fit = fit_conversations([short, long_, with_system], w, 256, None, None)
    assert fit.over == 2 and fit.items == [short, long_, with_system]
    # In the server's tokens, with the chat template around a user (5) or system + user (9).
    lengths = {1: 20, 2: 180, 3: 40}
    tokens = fit_conversations([short, long_, with_system], w, 256, lengths, (5, 9))
    # 180 + 5 + 64 fits; 40 + 9 + 64 and the system message (200 estimated) does not.
    assert tokens.over == 1 and tokens.items == [short, long_, with_system]
    skip = w.model_copy(update={"context_overflow": "skip"})
    assert fit_conversations([short, long_], skip, 256).items == [short]
    # Clipped to the prompt budget (256 - 64 = 192 tokens, about 768 characters), at a word;
    # the later turns of a session stay as they were.
    clip = w.model_copy(update={"context_overflow": "clip"})
    fitted = fit_conversations([short, long_], clip, 256)
    assert fitted.clipped == 1 and fitted.changed == {1}
    cut = fitted.items[1]
    assert cut.first.startswith("word word") and cut.first.endswith("word")
    assert 700 < len(cut.first) <= 768 and estimate_tokens(cut.first) + 64 <= 256
    assert cut.turns[1:] == ("later",) and cut.index == 2
    # A recorded answer's length as max_tokens: that is what has to fit.
    answers = Workload(max_tokens=8, dataset=Dataset(path="x", answer_len_as_max_tokens=True))
    assert fit_conversations([conv(1, "word " * 20, answer=300)], answers, 256).over == 1


def test_the_count_line_says_the_context_the_choice_and_how_tokens_were_counted() -> None:
    check = ContextCheck(
        context_tokens=2048,
        source="http://127.0.0.1:8000/v1/models",
        policy="report",
        unit="requests",
        total=85,
        over=12,
        counted="the trace's recorded lengths",
    )
    assert check.line() == (
        "context: 12 of 85 requests exceed the model's context of 2048 tokens (prompt + "
        "max_tokens; the trace's recorded lengths; from http://127.0.0.1:8000/v1/models): sent "
        "as they are (workload.context_overflow: report)"
    )
    clip = check.model_copy(update={"policy": "clip", "clipped": 11, "skipped": 1})
    assert clip.line().endswith(
        ": prompts clipped to fit (11), 1 not sent: max_tokens alone fills it "
        "(workload.context_overflow: clip)"
    )
    assert check.model_copy(update={"over": 0}).line().startswith("context: all 85 requests fit")
    unknown = check.model_copy(update={"context_tokens": None, "source": "the server did not say"})
    assert unknown.line() == (
        "context: the server did not say; the 85 requests are not checked "
        "(workload.context_overflow: report)"
    )
    assert "estimated" in counted_how(tokenizer=False, template_known=False)
    assert "/tokenize, with the chat template" in counted_how(tokenizer=True, template_known=True)


def test_context_overflow_is_a_strict_workload_field() -> None:
    spec = LoadSpec.model_validate({"workload": {"context_overflow": "clip"}})
    assert spec.workload.context_overflow == "clip"
    assert LoadSpec().workload.context_overflow == "report"
    with pytest.raises(ValidationError, match="'report', 'skip' or 'clip'"):
        LoadSpec.model_validate({"workload": {"context_overflow": "truncate"}})
