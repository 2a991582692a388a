"""agents.run: the headless CLI, with a scripted engine standing in for inference.load_engine."""

from __future__ import annotations

import json
import sys
import types

import pytest

from agents import run as cli
from agents.scripted import ScriptedModel
from protocol import ModelError
from tests.agents.helpers import call


@pytest.fixture
def fake_inference(monkeypatch):
    """Install a stand-in `inference` package whose load_engine returns the scripted model given."""
    loaded = {}

    def install(model):
        def load_engine(name, drafter=None, token=None, on_progress=None):
            loaded.update(name=name, drafter=drafter)
            return model
        monkeypatch.setitem(sys.modules, "inference", types.SimpleNamespace(load_engine=load_engine))
        return loaded
    return install


def test_cli_prints_table_totals_and_answer_and_writes_json(fake_inference, tmp_path, capsys):
    loaded = fake_inference(ScriptedModel([call("write_file", path="a.py", content="print(1)"), "Wrote a.py."]))
    out_json = tmp_path / "run.json"
    status = cli.main(["--model", "tiny", "Write a.py", "--max-steps", "3", "--k", "3", "--json", str(out_json)])
    printed = capsys.readouterr().out
    assert status == 0 and loaded["name"] == "tiny"
    assert "step 1: write_file" in printed and "tool_call" in printed and "final_answer" in printed
    assert "LLM time: baseline" in printed and "final answer:\nWrote a.py." in printed
    data = json.loads(out_json.read_text())
    assert data["settings"]["draft_tokens"] == 3 and data["settings"]["max_steps"] == 3
    assert len(data["steps"]) == 2 and data["end_reason"] == "answered"


def test_cli_exits_nonzero_when_the_run_fails(fake_inference, capsys):
    fake_inference(ScriptedModel([ModelError("the GPU fell over")]))
    assert cli.main(["broken task"]) == 1
    assert "the GPU fell over" in capsys.readouterr().out


def test_cli_rejects_bad_settings_before_loading(fake_inference, capsys):
    loaded = fake_inference(ScriptedModel([]))
    assert cli.main(["task", "--max-steps", "0"]) == 2
    assert not loaded and "max_steps" in capsys.readouterr().err
