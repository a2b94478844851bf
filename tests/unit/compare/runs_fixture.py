"""Run folders made of synthetic samples (no stack): what `harness compare` and the nightly
history read, with latencies drawn from a known distribution so a planted change is exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.data.samples import Sample
from harness.measure.sample_file import SAMPLE_FILE, write_sample_file


def synthetic_samples(
    n: int, seed: int, ttft_factor: float = 1.0, errors: int = 0, tokens: int = 16
) -> list[Sample]:
    """Requests like the simulated stack's (TTFT about 45 ms, 5 ms gaps, noisy), TTFT times
    `ttft_factor`."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ttft = float(rng.lognormal(np.log(45.0), 0.25)) * ttft_factor
        gaps = [float(g) for g in rng.lognormal(np.log(5.0), 0.3, tokens - 1)]
        failed = i < errors
        out.append(
            Sample(
                worker=0,
                seq=i,
                kind="chat",
                tenant="t",
                prompt_id=f"p{i}",
                repeated=False,
                intended_s=1_000.0 + i,
                sent_s=1_000.0 + i + 0.001,
                e2e_ms=ttft + sum(gaps) + 1.0,
                status=500 if failed else 200,
                error="http" if failed else None,
                ttfb_ms=ttft * 0.5,
                ttft_ms=None if failed else ttft,
                token_gaps_ms=[] if failed else gaps,
                output_tokens=None if failed else tokens,
                output_chunks=0 if failed else tokens,
                x_served_by="primary",
            )
        )
    return out


def make_run(
    folder: Path,
    samples: list[Sample],
    outcome: str = "passed",
    sha: str = "abc1234567",
    started_at: str = "2026-11-30T00:00:00+00:00",
    compare: dict[str, object] | None = None,
) -> Path:
    folder.mkdir(parents=True)
    gate_spec = {"name": "nightly", **({"compare": compare} if compare else {})}
    (folder / "report.json").write_text(
        json.dumps(
            {
                "name": "nightly",
                "outcome": outcome,
                "git_sha": sha,
                "started_at": started_at,
                "gate_spec": gate_spec,
            }
        )
    )
    write_sample_file(folder / SAMPLE_FILE, samples)
    return folder
