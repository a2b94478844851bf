"""The opt-in workloads: dataset replay, sessions, shared prefixes, trace replay, token sizing
inputs, and the report's workload section. The default workload stays exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.clients.sse import StreamInterpreter
from harness.data.samples import Sample
from harness.errors import ConfigError
from harness.load.dataset import read_conversations, select
from harness.load.scenarios import Overrides, apply_overrides, load_scenario
from harness.load.trace import TraceEntry, read_trace
from harness.load.workload import INSTRUCTION, WorkloadGenerator
from harness.load.workload_view import build_view, counter_deltas
from harness.spec.load import Dataset, LoadSpec, Sessions, SharedPrefix, Trace, Workload

SAMPLE = Path(__file__).resolve().parents[3] / "scenarios" / "data" / "conversations.jsonl"


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def gen(w: Workload, **kw: object) -> WorkloadGenerator:
    return WorkloadGenerator(w, "m", "sk", seed=3, worker=0, **kw)  # type: ignore[arg-type]


def body(plan: object) -> dict[str, object]:
    return json.loads(plan.body)  # type: ignore[attr-defined,no-any-return]


# --- dataset -----------------------------------------------------------------------------------
def test_both_conversation_layouts_are_read(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {
                "conversations": [
                    {"from": "human", "value": "one two"},
                    {"from": "gpt", "value": "a"},
                    {"from": "human", "value": "three"},
                ]
            },
            {
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "four five six"},
                ]
            },
        ],
    )
    a, b = read_conversations(f)
    assert a.turns == ("one two", "three") and a.answer_words == 1 and a.system is None
    assert b.turns == ("four five six",) and b.system == "be brief" and b.index == 2


@pytest.mark.parametrize(
    ("line", "kind", "expected"),
    [
        ("{not json", "not JSON", "not JSON"),
        ('{"text": "hi"}', "not a conversation", '"conversations" or a "messages"'),
        ('{"messages": [{"role": "assistant", "content": "x"}]}', "no user turn", "no user turn"),
        ('{"conversations": [{"from": "human"}]}', "malformed turn", "string 'value'"),
        ('{"conversations": []}', "empty", "no turns"),
    ],
)
def test_a_bad_entry_is_skipped_and_counted_a_file_of_them_is_a_config_error(
    tmp_path: Path, line: str, kind: str, expected: str
) -> None:
    f = tmp_path / "c.jsonl"
    f.write_text('{"messages": [{"role": "user", "content": "fine"}]}\n' + line + "\n")
    source = read_conversations(f)
    assert [c.first for c in source] == ["fine"]
    assert source.skipped == {kind: (1, "line 2")}
    assert source.skipped_line() == f"1 of 2 entries read skipped: {kind} 1 (first at line 2)"
    f.write_text(line + "\n")
    with pytest.raises(ConfigError) as err:
        list(read_conversations(f))
    assert err.value.source == str(f)
    assert "none of the first 1 entries is a conversation" in err.value.problems[0].message
    assert err.value.problems[1].location == "line 1" and expected in err.value.problems[1].message


def test_length_filters_and_limit(tmp_path: Path) -> None:
    convs = read_conversations(SAMPLE)
    kept = select(convs, Dataset(path="x", min_prompt_len=15, max_prompt_len=40)).conversations
    assert kept and all(15 <= len(c.first.split()) <= 40 for c in kept)
    assert len(select(convs, Dataset(path="x", limit=3)).conversations) == 3
    # In tokens when the tokenizer counts them; a worker keeps the ones chosen so.
    tokens = Dataset(path="x", min_prompt_len=110, max_prompt_len=111)
    only = select(convs, tokens, length=lambda c: 100 + c.index)
    assert [c.index for c in only.conversations] == [10, 11] and only.lengths == {10: 110, 11: 111}
    again = select(convs, Dataset(path="x"), only.lengths)
    assert again.conversations == only.conversations
    with pytest.raises(ConfigError, match="no conversation of 24"):
        select(convs, Dataset(path="x", min_prompt_len=10_000))


def test_without_a_limit_a_run_keeps_a_seeded_uniform_sample_in_file_order() -> None:
    convs = list(read_conversations(SAMPLE))
    a = select(convs, Dataset(path="x"), seed=1, pool=8)
    assert a.conversations == select(convs, Dataset(path="x"), seed=1, pool=8).conversations
    assert len(a.conversations) == 8 and a.passed == 24 and "8 of the 24 conversations" in a.how
    assert [c.index for c in a.conversations] == sorted(c.index for c in a.conversations)
    b = select(convs, Dataset(path="x"), seed=2, pool=8)
    assert a.conversations != b.conversations
    # Each conversation as likely as any other to be kept.
    kept = [0] * 25
    for seed in range(600):
        for c in select(convs, Dataset(path="x"), seed=seed, pool=8).conversations:
            kept[c.index] += 1
    assert min(kept[1:]) > 600 * 8 / 24 * 0.7 and max(kept) < 600 * 8 / 24 * 1.3


def test_dataset_prompts_are_seeded_and_sequential_order_strides_workers() -> None:
    convs = list(read_conversations(SAMPLE))
    w = Workload(dataset=Dataset(path=str(SAMPLE)))
    first = [body(gen(w, conversations=convs).next_request()) for _ in range(1)]
    assert first == [body(gen(w, conversations=convs).next_request())]
    g = gen(w, conversations=convs)
    users = {body(g.next_request())["messages"][-1]["content"] for _ in range(200)}  # type: ignore[index]
    assert users <= {c.first for c in convs} and len(users) > 15
    seq = Workload(dataset=Dataset(path=str(SAMPLE), order="sequential"))
    g1 = WorkloadGenerator(seq, "m", "sk", 3, worker=1, workers=2, conversations=convs)
    ids = [g1.next_request().prompt_id for _ in range(3)]
    assert ids == [f"conv-{convs[i].index}" for i in (1, 3, 5)]


def test_dataset_system_prompt_and_answer_length() -> None:
    convs = list(read_conversations(SAMPLE))
    with_system = [c for c in convs if c.system][:1]
    w = Workload(dataset=Dataset(path="x", answer_len_as_max_tokens=True))
    b = body(gen(w, conversations=with_system).next_request())
    assert b["messages"][0] == {"role": "system", "content": with_system[0].system}  # type: ignore[index]
    assert b["max_tokens"] == with_system[0].answer_words


def test_default_workload_requests_are_unchanged() -> None:
    w = Workload(completion_share=0.3, repeated_share=0.2)
    a, b = gen(w), gen(w)
    assert [a.next_request() for _ in range(30)] == [b.next() for _ in range(30)]


# --- shared prefix -----------------------------------------------------------------------------
def test_shared_prefix_share_groups_and_same_text_in_every_worker() -> None:
    w = Workload(shared_prefix=SharedPrefix(groups=3, words=50, share=0.7))
    g0 = gen(w)
    plans = [g0.next_request() for _ in range(1000)]
    share = sum(p.prefix_group is not None for p in plans) / len(plans)
    assert 0.65 < share < 0.75
    assert {p.prefix_group for p in plans} == {None, 0, 1, 2}
    g1 = WorkloadGenerator(w, "m", "sk", seed=3, worker=1)
    system_of = {}
    for g in (g0, g1):
        for _ in range(50):
            p = g.next_request()
            if p.prefix_group is not None:
                system = body(p)["messages"][0]["content"]  # type: ignore[index]
                assert system_of.setdefault(p.prefix_group, system) == system
                assert len(system.split()) == 50


# --- sessions ----------------------------------------------------------------------------------
def test_a_session_sends_the_history_with_each_answer_appended() -> None:
    w = Workload(sessions=Sessions(turns=3, turn_words=5))
    g = gen(w)
    s = g.new_session()
    p1 = g.next_turn(s)
    s.answered("first answer")
    p2 = g.next_turn(s)
    s.answered("second answer")
    p3 = g.next_turn(s)
    m3 = body(p3)["messages"]
    assert [m["role"] for m in m3] == ["user", "assistant", "user", "assistant", "user"]  # type: ignore[union-attr,index]
    assert m3[1]["content"] == "first answer" and m3[3]["content"] == "second answer"  # type: ignore[index]
    assert (p1.turn, p2.turn, p3.turn) == (1, 2, 3) and p1.prompt_id == p3.prompt_id
    assert p1.keep_text and p2.keep_text and not p3.keep_text and s.over


def test_dataset_sessions_use_the_conversations_own_turns() -> None:
    convs = [c for c in read_conversations(SAMPLE) if len(c.turns) >= 3][:1]
    g = gen(Workload(dataset=Dataset(path="x"), sessions=Sessions(turns=2)), conversations=convs)
    s = g.new_session()
    assert s.turns == convs[0].turns[:2]


def test_sessions_need_a_closed_loop() -> None:
    with pytest.raises(ValueError, match="needs a closed loop"):
        LoadSpec.model_validate(
            {"workload": {"sessions": {}}, "load": {"kind": "open", "rate_rps": 1}}
        )


# --- trace -------------------------------------------------------------------------------------
def test_mooncake_and_azure_traces_give_the_same_requests(tmp_path: Path) -> None:
    moon = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"timestamp": 1000, "input_length": 40, "output_length": 5, "hash_ids": [1, 2]},
            {"timestamp": 3000, "input_length": 60, "output_length": 7, "hash_ids": [1, 3]},
            {"timestamp": 2000, "input_length": 50, "output_length": 6, "hash_ids": [4]},
        ],
    )
    azure = tmp_path / "t.csv"
    azure.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.0000000,40,5\n2023-11-16 18:15:48.0000000,60,7\n"
        "2023-11-16 18:15:47.0000000,50,6\n"
    )
    m = read_trace(moon, Trace(path="x", speedup=2))
    a = read_trace(azure, Trace(path="x", speedup=2))
    assert [(e.offset_s, e.input_tokens, e.output_tokens) for e in m] == [
        (0.0, 40, 5),
        (0.5, 50, 6),
        (1.0, 60, 7),
    ]
    assert [(e.offset_s, e.input_tokens, e.output_tokens) for e in a] == [
        (e.offset_s, e.input_tokens, e.output_tokens) for e in m
    ]
    assert m[2].hash_ids == (1, 3)
    cut = read_trace(moon, Trace(path="x", offset=1, max_requests=1))
    assert [(e.offset_s, e.input_tokens) for e in cut] == [(0.0, 50)]


def test_a_bad_trace_row_names_its_line(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text('{"timestamp": 1, "input_length": 2, "output_length": 3}\n{"timestamp": 2}\n')
    with pytest.raises(ConfigError) as err:
        read_trace(f, Trace(path="x"))
    assert err.value.problems[0].location == "line 2"
    csv = tmp_path / "t.csv"
    csv.write_text("TIMESTAMP,ContextTokens\n1,2\n")
    with pytest.raises(ConfigError, match="GeneratedTokens"):
        read_trace(csv, Trace(path="x"))


def test_trace_requests_match_the_recorded_sizes_and_share_block_prefixes() -> None:
    g = gen(Workload(), one_token_words=["alpha", "beta", "gamma"], instruction_tokens=9)
    g._block_tokens = 20
    a = g.for_trace(TraceEntry(0.0, 49, 7, (5, 6)))
    b = g.for_trace(TraceEntry(0.1, 49, 3, (5, 8)))
    assert a.planned_tokens == 49 and body(a)["max_tokens"] == 7
    wa = a.prompt.removeprefix(INSTRUCTION).split()
    wb = b.prompt.removeprefix(INSTRUCTION).split()
    assert len(wa) == 40 and wa[:20] == wb[:20] and wa[20:] != wb[20:]


def test_arrival_trace_and_a_trace_section_go_together() -> None:
    for load in ({"kind": "open", "arrival": "trace"}, {"kind": "open", "trace": {"path": "t"}}):
        with pytest.raises(ValueError, match="go together"):
            LoadSpec.model_validate({"load": load})


# --- files named on the command line and in scenarios ------------------------------------------
def test_scenario_files_resolve_relative_to_their_folder() -> None:
    spec = load_scenario("trace")
    assert spec.load.trace is not None and Path(spec.load.trace.path).is_file()  # type: ignore[union-attr]
    assert Path(load_scenario("dataset").workload.dataset.path).is_absolute()  # type: ignore[union-attr]


def test_a_missing_dataset_is_a_config_error_naming_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        apply_overrides(load_scenario("dataset"), Overrides(dataset="nope.jsonl"))
    assert err.value.problems[0].location == "workload.dataset.path"
    assert "does not exist" in err.value.problems[0].message
    write_jsonl(tmp_path / "mine.jsonl", [{"messages": [{"role": "user", "content": "a b c d e"}]}])
    spec = apply_overrides(load_scenario("dataset"), Overrides(dataset="mine.jsonl"))
    assert spec.workload.dataset.path == str(tmp_path / "mine.jsonl")  # type: ignore[union-attr]
    t = apply_overrides(
        load_scenario("chat"), Overrides(trace=str(SAMPLE.parent / "trace-azure.csv"))
    )
    assert t.load.kind == "open" and t.load.arrival == "trace"  # type: ignore[union-attr]


# --- responses and the report ------------------------------------------------------------------
@pytest.mark.parametrize(
    "chunk",
    [
        {
            "choices": [],
            "usage": {"prompt_tokens": 9, "prompt_tokens_details": {"cached_tokens": 6}},
        },
        {"choices": [{"delta": {}, "finish_reason": "stop"}], "timings": {"cache_n": 6}},
    ],
)
def test_cached_tokens_from_vllm_usage_or_llama_cpp_timings(chunk: dict[str, object]) -> None:
    i = StreamInterpreter(keep_text=True)
    i.message({"choices": [{"delta": {"content": "he"}}]}, 1.0)
    i.message({"choices": [{"delta": {"content": "llo"}}]}, 1.1)
    i.message(chunk, 1.2)
    assert i.cached_tokens == 6 and "".join(i.text) == "hello"
    assert StreamInterpreter().cached_tokens is None


def sample(seq: int, **kw: object) -> Sample:
    base: dict[str, object] = dict(
        worker=0,
        seq=seq,
        kind="chat",
        tenant="t",
        prompt_id="p",
        repeated=False,
        intended_s=None,
        sent_s=float(seq),
        e2e_ms=10.0,
        ttft_ms=float(seq),
        prompt_tokens=100,
        output_tokens=10,
    )
    return Sample(**{**base, **kw})  # type: ignore[arg-type]


def test_view_groups_turns_and_prefixes_and_sums_cached_tokens() -> None:
    samples = [
        sample(1, turn=1, cached_tokens=0, prefix_group=0),
        sample(2, turn=2, cached_tokens=80, prefix_group=0),
        sample(3, turn=2, cached_tokens=60, planned_tokens=95),
        sample(4, turn=1, error="http"),
    ]
    v = build_view(
        samples,
        counter_deltas(
            "u",
            {"llamacpp:prompt_tokens_total": 10.0},
            {"llamacpp:prompt_tokens_total": 170.0},
        ),
    )
    rows = {g.name: g for g in v.groups}
    assert rows["turn 1"].ttft_ms.count == 1 and rows["turn 2"].ttft_ms.p50 == 2.5
    assert rows["shared prefix"].ttft_ms.count == 2 and rows["no prefix"].ttft_ms.count == 1
    assert v.cached_share == pytest.approx(140 / 300)
    assert v.prompt_tokens_planned.count == 1 and v.prompt_tokens_served.p50 == 100
    # A failed request was evaluated by the server too, with a size not known: no share.
    assert v.server_cache is not None and v.server_cache.evaluated_share is None
    assert v.server_cache.deltas["vllm:prefix_cache_hits_total"] is None
    ok = build_view(
        samples[:3],
        counter_deltas(
            "u", {"llamacpp:prompt_tokens_total": 10.0}, {"llamacpp:prompt_tokens_total": 170.0}
        ),
    )
    assert ok.server_cache is not None and ok.server_cache.evaluated_share == pytest.approx(
        160 / 300
    )


def test_trace_sizes_count_the_chat_template_and_the_shared_prefix() -> None:
    vocab = ["alpha", "beta", "gamma"]
    g = gen(Workload(), one_token_words=vocab, instruction_tokens=9, template_tokens=(5, 9))
    p = g.for_trace(TraceEntry(0.0, 60, 4))
    assert p.planned_tokens == 60 and len(p.prompt.removeprefix(INSTRUCTION).split()) == 46
    w = Workload(shared_prefix=SharedPrefix(groups=1, words=10, share=1))
    g = gen(w, one_token_words=vocab, instruction_tokens=9, template_tokens=(5, 9))
    p = g.for_trace(TraceEntry(0.0, 60, 4))
    assert p.prefix_group == 0 and p.planned_tokens == 60
    assert len(p.prompt.removeprefix(INSTRUCTION).split()) == 60 - 9 - 9 - 10
    # Without the tokenizer nothing is claimed in tokens.
    assert gen(Workload()).for_trace(TraceEntry(0.0, 60, 4)).planned_tokens is None


def test_vllm_prefix_cache_hit_rate_from_its_counters() -> None:
    before = {"vllm:prefix_cache_hits_total": 100.0, "vllm:prefix_cache_queries_total": 400.0}
    after = {"vllm:prefix_cache_hits_total": 400.0, "vllm:prefix_cache_queries_total": 800.0}
    v = build_view([sample(1)], counter_deltas("u", before, after))
    assert v.server_cache is not None and v.server_cache.hit_rate == pytest.approx(0.75)
    assert v.server_cache.evaluated_share is None
    assert counter_deltas("u", None, after) is None  # no /metrics before the run: no figure


def test_capacity_refuses_a_trace_before_anything_starts(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from harness.commands.load import register

    app = typer.Typer()
    register(app)
    r = CliRunner().invoke(
        app,
        [
            "capacity",
            "--target",
            "http://127.0.0.1:9",
            "--scenario",
            "trace",
            "--slo",
            "ttft_p95_ms<=500",
            "--run-dir",
            str(tmp_path / "run"),
        ],
    )
    assert isinstance(r.exception, ConfigError), r.output
    assert "a trace sets its own arrival times" in str(r.exception)
    assert not (tmp_path / "run").exists()
