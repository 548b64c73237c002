"""A CPU quota for one server process, as a container's `--cpus` sets it: a cgroup of its own
with a CFS quota. It lets the cluster scenario show what a second instance adds when each
instance has a fixed share of a core, on a machine whose cores the load generator and Redis
also need. It needs root and the cgroup v1 CPU controller (as on the machine the figures in
README.md come from); elsewhere run the instances in containers with `--cpus` instead."""

from __future__ import annotations

import secrets
from pathlib import Path

PERIOD_US = 100_000
ROOT = Path("/sys/fs/cgroup/cpu")


class CpuQuota:
    """Holds `pid` to `cores` (0.5: half of one core); `release()` removes the cgroup once the
    process has exited."""

    def __init__(self, pid: int, cores: float) -> None:
        self.path = ROOT / f"chat-bench-{secrets.token_hex(4)}"
        self.path.mkdir()
        (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(round(cores * PERIOD_US)))
        (self.path / "cgroup.procs").write_text(str(pid))

    def release(self) -> None:
        self.path.rmdir()


def unavailable() -> str | None:
    """Why quotas cannot be set here, or None."""
    if not (ROOT / "cpu.cfs_quota_us").exists():
        return f"no cgroup v1 CPU controller at {ROOT}"
    probe = ROOT / f"chat-bench-probe-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as error:
        return f"cannot make a cgroup under {ROOT}: {error.strerror} (the bench must run as root)"
    return None
