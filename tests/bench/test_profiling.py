"""`--profile DIR`: py-spy samples our server during a load's measured window, and
`python -m bench.profiling` says where the time went."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.profiling import read_stacks, where_time_went
from tests.bench.test_bench_smoke import TOY
from tests.conftest import ROOT


def test_where_time_went_counts_own_and_total_samples(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text("main (app.py:1);send (service.py:10);append (store.py:5) 6\n"
                   "main (app.py:1);send (service.py:12) 2\n"
                   "main (app.py:1);deliver (fanout.py:3) 2\n")
    report = where_time_went(read_stacks(raw), top=10)
    own, total = report.split("total %")
    assert report.startswith("10 samples")
    assert " 60.0   append (store.py)" in own
    assert " 20.0   send (service.py)" in own  # its own line 12, not the call on line 10
    assert " 80.0   send (service.py)" in total
    assert "100.0   main (app.py)" in total


@pytest.mark.skipif(shutil.which("node") is None, reason="the load generator runs on Node.js")
def test_a_load_is_profiled_in_its_window(tmp_path: Path) -> None:
    options = [*TOY, "--duration", "2", "--no-reference", "--only", "throughput", "--profile", str(tmp_path)]
    done = subprocess.run([sys.executable, "-m", "bench", *options], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    profile = tmp_path / "throughput-embedded-0.txt"
    stacks = read_stacks(profile)
    assert sum(stacks.values()) > 0
    assert any(frame.startswith("ChatService.send ") for frames in stacks for frame in frames)
    shown = subprocess.run([sys.executable, "-m", "bench.profiling", str(profile)], cwd=ROOT, capture_output=True,
                           text=True, timeout=30, check=True)
    assert "own %" in shown.stdout and "samples" in shown.stdout
