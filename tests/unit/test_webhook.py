import json
from pathlib import Path

import httpx

from harness.clients.webhook import AlertReceiver
from harness.stack.ports import free_ports

PAYLOAD = {
    "version": "4",
    "status": "firing",
    "receiver": "harness",
    "alerts": [{"status": "firing", "labels": {"alertname": "HighErrorRate"}}],
}


def test_receiver_records_and_journals_notifications(tmp_path: Path) -> None:
    journal = tmp_path / "alerts.jsonl"
    receiver = AlertReceiver(free_ports(1)[0], journal=journal).start()
    try:
        assert receiver.wait_for("HighErrorRate", timeout_s=0.05) is None
        r = httpx.post(receiver.url, json=PAYLOAD, timeout=5)
        assert r.status_code == 200
        note = receiver.wait_for("HighErrorRate", "firing", timeout_s=5)
        assert note is not None and note.status == "firing"
        assert receiver.wait_for("HighErrorRate", "resolved", timeout_s=0.05) is None
        assert httpx.post(receiver.url, content=b"not json", timeout=5).status_code == 400
    finally:
        receiver.close()
    lines = journal.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["status"] == "firing"
