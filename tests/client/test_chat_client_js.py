"""The reference client module (web/static/chat-client.js) under Node's own test runner.

The Node tests start their own server processes (`python -m chatserver` with this
interpreter) on free loopback ports; see web/test/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TESTS = sorted((ROOT / "web" / "test").glob("*.test.mjs"))


@pytest.mark.skipif(not shutil.which("node"), reason="Node.js is not installed")
def test_chat_client_module_under_node() -> None:
    assert TESTS, "no web/test/*.test.mjs files"
    env = {**os.environ, "CHAT_TEST_PYTHON": sys.executable}
    result = subprocess.run(["node", "--test", *map(str, TESTS)], cwd=ROOT / "web", env=env,
                            capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stdout + result.stderr
