"""The agent on the trained mini pair, end to end: real engine, parser, tools and sandbox, with the drafter."""

from __future__ import annotations

import pytest

from agents import AgentConfig, run_agent
from agents.corpus.generate import example_tasks, toolbox_tools
from agents.events import RunDone
from protocol import GenerationSettings

TASK = "Primes below 100"


@pytest.fixture(scope="module")
def sandbox():
    from agents.sandbox import open_sandbox

    box = open_sandbox()
    assert box.available, f"this test runs the model's code: {box.reason}"
    return box


def test_the_agent_completes_an_example_task_with_real_tool_calls(sandbox, tmp_path):
    from inference import load_engine

    engine = load_engine("mini", dtype="fp32")
    task = next(t for t in example_tasks(toolbox_tools(sandbox)) if t.family == "primes")
    config = AgentConfig(mode="compare", max_steps=4, settings=GenerationSettings(max_new_tokens=400, draft_tokens=4))
    from agents.sandbox import make_workspace, remove_workspace

    workspace = make_workspace()
    try:
        done = [e for e in run_agent(engine, task.text, config=config, workspace=workspace, sandbox=sandbox)][-1]
    finally:
        remove_workspace(workspace)
        engine.close()
    assert isinstance(done, RunDone) and done.reason == "answered", done.error
    calls = [r for step in done.steps for r in step.tool_results]
    assert any(r.call.name in ("run_python", "run_tests") and r.exit_code == 0 for r in calls), calls
    assert "count: 25" in "\n".join(r.output for r in calls)  # the sandbox really ran the model's sieve
    assert task.is_correct(done.final_answer), done.final_answer
    compared = [s.comparison for s in done.steps if s.comparison is not None]
    assert compared and all(c.identical for c in compared)  # greedy, fp32: the drafter changes nothing
    assert sum(c.drafter.stats.drafter.accepted_tokens for c in compared) > 0
