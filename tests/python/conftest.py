"""Fixtures for testing assets/modal_sandbox.py against a stand-in Modal SDK
(tests/python/fake_modal), in-process and as a subprocess."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FAKE = HERE / "fake_modal"
SCRIPT = HERE.parent.parent / "assets" / "modal_sandbox.py"


def load_script():
    spec = importlib.util.spec_from_file_location("modal_sandbox", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Env:
    """A project directory to run the script in, and the fake SDK's state."""

    def __init__(self, project: Path, state: Path):
        self.project = project
        self.state = state
        self.script = load_script()

    def calls(self, op=None):
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        calls = [json.loads(line) for line in path.read_text().splitlines()]
        return [c for c in calls if op is None or c["op"] == op]

    def clear_calls(self):
        (self.state / "calls.jsonl").unlink(missing_ok=True)

    def main(self, *argv, capsys):
        """Run in-process; returns (exit code, stdout, stderr)."""
        code = self.script.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    def run(self, *argv, **env):
        """Run as `python modal_sandbox.py ...`, as uv would."""
        full_env = {**os.environ, "PYTHONPATH": str(FAKE), "FAKE_MODAL_ROOT": str(self.state), **env}
        return subprocess.run(
            [sys.executable, str(SCRIPT), *argv],
            cwd=self.project, env=full_env, capture_output=True, text=True, timeout=60,
        )


@pytest.fixture
def env(tmp_path, monkeypatch):
    project = tmp_path / "project"
    state = tmp_path / "modal-state"
    project.mkdir()
    state.mkdir()
    (project / "tests").mkdir()
    (project / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    (project / "Dockerfile").write_text("FROM python:3.12-slim\nRUN pip install pytest\n")
    monkeypatch.chdir(project)
    monkeypatch.setenv("FAKE_MODAL_ROOT", str(state))
    monkeypatch.delenv("OFFLOAD_NO_CACHE", raising=False)
    monkeypatch.syspath_prepend(str(FAKE))
    for name in [m for m in sys.modules if m == "modal" or m.startswith("modal.")]:
        monkeypatch.delitem(sys.modules, name)
    return Env(project, state)
