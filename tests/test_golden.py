"""Golden wire files: what logstream streams for representative runs, pinned byte for byte.

Each scenario of ``tests/golden_scenarios.py`` (callbacks in both schema formats, odd
names, errors, include/exclude filters, tokens and chat chunks, nested runs, native
``stream_log`` runs) is replayed with a fake clock and sequential ids, written as JSON
Lines, and compared with its file in ``tests/golden/``. No LangChain is needed, so every
Python leg of CI checks the wire format. After an intended change to the wire, rewrite
the files with ``LOGSTREAM_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py`` and
review the diff; the test never rewrites them on its own.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

import pytest
from golden_scenarios import (
    FORMATS,
    GOLDEN_DIR,
    REGEN_ENV,
    SCENARIOS,
    regenerating,
    scenario_id,
)

from logstream import read_jsonl


def _first_difference(expected: str, got: str) -> str:
    diff = difflib.unified_diff(
        expected.splitlines(), got.splitlines(), "golden", "streamed", n=0, lineterm=""
    )
    return "\n".join(list(diff)[:8])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_id)
class TestGoldenFiles:
    def test_stream_matches_the_golden_file(self, scenario: Any) -> None:
        """The scenario streams exactly the bytes of its golden file."""
        got = scenario.record()
        if regenerating():
            scenario.file.write_bytes(got.encode("ascii"))
            pytest.skip(f"{REGEN_ENV}=1: rewrote {scenario.file.name}; review the diff")
        assert scenario.file.is_file(), f"no golden file {scenario.file}; run with {REGEN_ENV}=1"
        expected = scenario.file.read_text(encoding="ascii")
        assert got == expected, (
            f"{scenario.file.name} differs from what the scenario streams:\n"
            f"{_first_difference(expected, got)}"
        )

    def test_golden_file_is_a_complete_recording(self, scenario: Any) -> None:
        """The golden file reads back as a complete recording whose end record counts it."""
        recording = read_jsonl(scenario.file)
        assert recording.complete
        lines = scenario.file.read_text(encoding="ascii").splitlines()
        assert recording.end is not None and recording.end.patches == len(lines) - 1
        assert json.loads(lines[0])["ops"][0]["path"] == ""  # the root's replace comes first


class TestGoldenDirectory:
    def test_every_file_has_a_scenario(self) -> None:
        """No golden file is left over from a scenario that no longer exists."""
        files = {path.name for path in GOLDEN_DIR.glob("*.jsonl")}
        assert files == {scenario.file.name for scenario in SCENARIOS}

    def test_scenarios_cover_the_wire(self) -> None:
        """Between them the goldens hold both formats, odd keys, errors, chunks and filters."""
        assert {scenario.schema_format for scenario in SCENARIOS} == set(FORMATS)
        text = "".join(path.read_text(encoding="ascii") for path in GOLDEN_DIR.glob("*.jsonl"))
        assert "~1" in text and "~0" in text and ":2" in text  # escaped and repeated names
        assert '"error":"ConnectionError: ' in text
        assert '"type":"AIMessageChunk"' in text
        assert '"/streamed_output/-"' in text
