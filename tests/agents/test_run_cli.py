"""agents.run: the headless CLI, with a scripted engine standing in for inference.load_engine."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from agents import MAX_TASK_CHARS
from agents import run as cli
from agents.scripted import ScriptedModel
from protocol import ModelError
from tests.agents.helpers import call


@pytest.fixture
def fake_inference(monkeypatch):
    """Install a stand-in `inference` package whose load_engine returns the scripted model given."""
    loaded = {}

    def install(model):
        def load_engine(name, drafter=None, *, token=None, on_progress=None, engine="fast", dtype=None):
            loaded.update(name=name, drafter=drafter, engine=engine, dtype=dtype)
            return model
        monkeypatch.setitem(sys.modules, "inference", types.SimpleNamespace(load_engine=load_engine,
                                                                            default_model=lambda: "tiny"))
        return loaded
    return install


def test_cli_prints_table_totals_and_answer_and_writes_json(fake_inference, tmp_path, capsys):
    loaded = fake_inference(ScriptedModel([call("write_file", path="a.py", content="print(1)"), "Wrote a.py."]))
    out_json = tmp_path / "run.json"
    status = cli.main(["--model", "tiny", "Write a.py", "--max-steps", "3", "--k", "3", "--json", str(out_json),
                       "--clean"])
    printed = capsys.readouterr().out
    assert status == 0 and loaded["name"] == "tiny"
    assert "step 1: write_file" in printed and "tool_call" in printed and "final_answer" in printed
    assert "LLM time: baseline" in printed and "final answer:\nWrote a.py." in printed
    data = json.loads(out_json.read_text())
    assert data["settings"]["draft_tokens"] == 3 and data["settings"]["max_steps"] == 3
    assert len(data["steps"]) == 2 and data["end_reason"] == "answered"


def test_cli_exits_nonzero_when_the_run_fails(fake_inference, capsys):
    fake_inference(ScriptedModel([ModelError("the GPU fell over")]))
    assert cli.main(["broken task", "--clean"]) == 1
    assert "the GPU fell over" in capsys.readouterr().out


def test_cli_rejects_bad_settings_before_loading(fake_inference, capsys):
    loaded = fake_inference(ScriptedModel([]))
    assert cli.main(["task", "--max-steps", "0"]) == 2
    assert not loaded and "max_steps" in capsys.readouterr().err


def kept_workspace(err: str) -> Path:
    line = next(line for line in err.splitlines() if line.startswith("workspace: "))
    return Path(line.removeprefix("workspace: "))


@pytest.mark.parametrize("task, fragment", [("   ", "The task is empty"), ("x" * (MAX_TASK_CHARS + 1), "limit is")])
def test_cli_rejects_a_bad_task_before_loading(fake_inference, capsys, task, fragment):
    loaded = fake_inference(ScriptedModel([]))
    assert cli.main([task]) == 2
    assert not loaded and fragment in capsys.readouterr().err


def test_cli_passes_engine_and_dtype_to_the_loader(fake_inference, capsys):
    loaded = fake_inference(ScriptedModel(["ok"]))
    assert cli.main(["task", "--engine", "transformers", "--dtype", "fp32", "--clean"]) == 0
    assert (loaded["engine"], loaded["dtype"], loaded["name"]) == ("transformers", "fp32", "tiny")


def test_cli_engine_and_dtype_choices_are_the_engines():
    inference = pytest.importorskip("inference")
    assert cli.ENGINES == tuple(inference.ENGINES) and set(cli.DTYPES) == set(inference.DTYPES)


def test_cli_keeps_the_workspace_unless_clean(fake_inference, capsys):
    fake_inference(ScriptedModel([call("write_file", path="a.py", content="x"), "ok"]))
    assert cli.main(["task"]) == 0
    ws = kept_workspace(capsys.readouterr().err)
    try:
        assert (ws / "a.py").read_text() == "x"
    finally:
        cli.remove_workspace(ws)
    fake_inference(ScriptedModel([call("write_file", path="a.py", content="x"), "ok"]))
    assert cli.main(["task", "--clean"]) == 0
    assert not kept_workspace(capsys.readouterr().err).exists()


def test_cli_continue_follows_up_in_the_same_conversation_and_workspace(fake_inference, tmp_path, capsys):
    first_json, second_json = tmp_path / "first.json", tmp_path / "second.json"
    fake_inference(ScriptedModel([call("write_file", path="a.py", content="x = 1\n"), "Wrote a.py."]))
    assert cli.main(["Write a.py", "--json", str(first_json)]) == 0
    err = capsys.readouterr().err
    ws = kept_workspace(err)
    assert f"--continue {first_json}" in err
    try:
        model = ScriptedModel([call("read_file", path="a.py"), "It says x = 1."])
        fake_inference(model)
        assert cli.main(["--continue", str(first_json), "What is in a.py?", "--json", str(second_json)]) == 0
        assert kept_workspace(capsys.readouterr().err) == ws
        seen = model.calls[0].messages
        assert [m["content"] for m in seen if m["role"] == "user"] == ["Write a.py", "What is in a.py?"]
        assert "1\tx = 1" in json.loads(second_json.read_text())["steps"][0]["tool_results"][0]["output"]
    finally:
        cli.remove_workspace(ws)


def test_cli_continue_with_a_bad_file_fails_before_loading(fake_inference, tmp_path, capsys):
    loaded = fake_inference(ScriptedModel([]))
    (tmp_path / "x.json").write_text('{"messages": []}')
    assert cli.main(["--continue", str(tmp_path / "x.json"), "more"]) == 2
    assert cli.main(["--continue", str(tmp_path / "missing.json"), "more"]) == 2
    assert not loaded and "--continue" in capsys.readouterr().err


def test_cli_without_a_drafter_runs_compare_as_baseline_with_a_note(fake_inference, capsys):
    model = ScriptedModel(["ok"])
    model.drafter_id = None
    fake_inference(model)
    assert cli.main(["task", "--clean"]) == 0
    assert "runs as baseline only" in capsys.readouterr().err
    assert [c.kind for c in model.calls] == ["generate"] and model.calls[0].use_drafter is False
    fake_inference(model)
    assert cli.main(["task", "--mode", "drafter", "--clean"]) == 2
    assert "needs a drafter" in capsys.readouterr().err
