"""`--profile DIR`: py-spy samples our server processes during the measured window only (not while
connections open; in the reconnect storm, from the drop until the last client is back), and
`python -m bench.profiling FILE...` prints where the time went.

Files are py-spy's raw format: one line per distinct stack, frames joined by ";", then a space and
the number of samples that ended in it.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

SAMPLES_PER_S = 100
FINISH_TIMEOUT = 30.0  # py-spy writes its file after --duration; this only keeps a stuck one from hanging us


def start(pids: Sequence[int], duration: float | None, prefix: Path) -> list[subprocess.Popen[bytes]]:
    """One `py-spy record` per pid, for `duration` seconds from now (None: until `finish`), into
    `{prefix}-{index}.txt`. --nonblocking: the server is not paused to be sampled, so it runs as
    fast as without."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    prefix.parent.mkdir(parents=True, exist_ok=True)
    length = ["--duration", str(max(1, round(duration)))] if duration is not None else []
    return [
        subprocess.Popen([spy, "record", "--pid", str(pid), *length, "--rate", str(SAMPLES_PER_S), "--format", "raw",
                          "--nonblocking", "--output", f"{prefix}-{index}.txt"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for index, pid in enumerate(pids)
    ]


def finish(samplers: Iterable[subprocess.Popen[bytes]], *, stop: bool = False) -> None:
    """Wait for the samplers to write their files; with `stop`, end their sampling now (py-spy
    writes what it has on SIGINT)."""
    for sampler in samplers:
        if stop and sampler.poll() is None:
            sampler.send_signal(signal.SIGINT)
        try:
            sampler.wait(FINISH_TIMEOUT)
        except subprocess.TimeoutExpired:
            sampler.kill()
            sampler.wait()


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    """Samples per stack (outermost frame first) in one raw py-spy file."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks[tuple(frames.split(";"))] += int(count)
    return stacks


def where_time_went(stacks: Counter[tuple[str, ...]], top: int) -> str:
    """The `top` functions by own samples and by samples with them anywhere on the stack, in %."""
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for frames, count in stacks.items():
        own[_function(frames[-1])] += count
        for function in {_function(frame) for frame in frames}:
            anywhere[function] += count
    lines = [f"{total} samples", "", "own %   function"]
    lines += [f"{100 * count / total:5.1f}   {name}" for name, count in own.most_common(top)]
    lines += ["", "total % function"]
    lines += [f"{100 * count / total:5.1f}   {name}" for name, count in anywhere.most_common(top)]
    return "\n".join(lines)


def _function(frame: str) -> str:
    """`name (file.py:12)` without its line: samples of one function on different lines add up."""
    name, _, place = frame.partition(" (")
    return f"{name} ({place.rpartition(':')[0] or place.rstrip(')')})"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profiling", description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+", help="raw py-spy files (added together)")
    parser.add_argument("--top", type=int, default=25, help="functions to list in each table")
    args = parser.parse_args(argv)
    stacks: Counter[tuple[str, ...]] = Counter()
    for path in args.files:
        stacks.update(read_stacks(path))
    print(where_time_went(stacks, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
