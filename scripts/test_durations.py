"""Writes tests/durations.json from a suite run's JUnit report: how long each test that takes two
seconds or more ran, which the suite's scheduler uses to start the longest work first.

    python scripts/test_durations.py reports/runs/suite-parallel.xml
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "durations.json"
MIN_S = 2.0


def node_id(classname: str, name: str) -> str:
    """pytest's node id of a JUnit test case (`tests.unit.test_x.TestY` + name)."""
    parts = classname.split(".")
    for k in range(len(parts), 0, -1):
        module = "/".join(parts[:k]) + ".py"
        if (ROOT / module).is_file():
            return "::".join([module, *parts[k:], name])
    raise SystemExit(f"{classname}: no test module of that name under {ROOT}")


def main(report: str) -> None:
    times = {
        node_id(case.get("classname", ""), case.get("name", "")): float(case.get("time", 0))
        for case in ET.parse(report).iter("testcase")
    }
    kept = {k: round(v) for k, v in sorted(times.items()) if v >= MIN_S}
    OUT.write_text(json.dumps(kept, indent=0) + "\n")
    print(f"{OUT.relative_to(ROOT)}: {len(kept)} of {len(times)} tests took {MIN_S:g} s or more")


if __name__ == "__main__":
    main(sys.argv[1])
