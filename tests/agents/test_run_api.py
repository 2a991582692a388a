"""run_agent's contract: honest endings (cut-off replies, empty replies, any model failure), follow-ups
through plain-data history or a LangGraph checkpointer, the task bound, and records that pickle."""

from __future__ import annotations

import pickle
import pytest
from langgraph.checkpoint.memory import InMemorySaver

import agents
from agents import AgentConfig, MAX_TASK_CHARS, run_agent
from agents import graph as agent_graph
from agents.events import ModelDone, RunDone, TextDelta
from agents.graph import AgentState, build_agent
from agents.prompts import EMPTY_REPLY_NOTE
from agents.scripted import ScriptedModel, split_pieces
from agents.tools import Toolbox
from protocol import GenerationSettings
from tests.agents.helpers import call, of_type

LIMIT = 30  # max_new_tokens in these tests
LONG_TEXT = "This answer goes on and on " * 10  # far more than LIMIT pieces


def go(model, tmp_path, task="Write hello.py.", *, mode="drafter", history=(), max_steps=6, **kw):
    config = AgentConfig(mode=mode, max_steps=max_steps, settings=GenerationSettings(max_new_tokens=LIMIT,
                                                                                     draft_tokens=3))
    return list(run_agent(model, task, config=config, workspace=tmp_path / "ws", history=history, **kw))


# ---- honest endings ----

def test_a_reply_cut_at_the_token_limit_is_not_an_answer(tmp_path):
    model = ScriptedModel([LONG_TEXT, "Short answer."])
    done = go(model, tmp_path)[-1]
    assert done.reason == "answered" and done.final_answer == "Short answer."
    cut, answer = done.steps
    assert (cut.kind, cut.stop_reason, answer.kind, answer.stop_reason) == ("cut_off", "max_new_tokens",
                                                                           "final_answer", "eos")
    told = model.calls[1].messages[-1]
    assert told["role"] == "user" and f"limit of {LIMIT} new tokens" in told["content"] and told == {
        "role": "user", "content": cut.feedback}
    assert model.calls[1].messages[-2] == {"role": "assistant", "content": "".join(split_pieces(LONG_TEXT)[:LIMIT]).strip()}


def test_a_cut_off_thought_never_ends_the_run_as_answered(tmp_path):
    model = ScriptedModel(["<|channel>thought\n" + LONG_TEXT], repeat_last=True)
    done = go(model, tmp_path, max_steps=3)[-1]
    assert done.reason == "step_limit" and [s.kind for s in done.steps] == ["cut_off"] * 3


def test_a_tool_call_cut_at_the_limit_is_not_run_and_the_model_is_told_the_limit(tmp_path):
    long_write = call("write_file", path="big.py", content="x = 1\n" * 50)
    model = ScriptedModel([long_write, "I will write it in parts."])
    done = go(model, tmp_path)[-1]
    step = done.steps[0]
    assert step.kind == "cut_off" and step.tool_calls == () and step.parse_error is not None
    assert not (tmp_path / "ws" / "big.py").exists()
    reply = model.calls[1].messages[-1]
    assert reply["role"] == "tool" and f"limit of {LIMIT} new tokens inside a tool call" in reply["content"]
    assert reply["tool_call_id"] == model.calls[1].messages[-2]["tool_calls"][-1]["id"]
    assert done.reason == "answered"


def test_complete_calls_before_a_cut_still_run(tmp_path):
    model = ScriptedModel([call("list_files") + LONG_TEXT, "Done."])
    done = go(model, tmp_path)[-1]
    first = done.steps[0]
    assert first.kind == "tool_call" and first.stop_reason == "max_new_tokens" and len(first.tool_results) == 1


def test_an_empty_reply_is_a_format_error_the_model_hears_about(tmp_path):
    model = ScriptedModel(["<|channel>thought\nhmm<channel|>", "Now an answer."])
    done = go(model, tmp_path)[-1]
    assert [s.kind for s in done.steps] == ["format_error", "final_answer"]
    assert model.calls[1].messages[-1] == {"role": "user", "content": EMPTY_REPLY_NOTE}


@pytest.mark.parametrize("failure", [RuntimeError("CUDA error: device-side assert"), KeyError("past_key_values"),
                                     MemoryError()])
def test_any_model_exception_ends_the_run_with_its_finished_steps(tmp_path, failure):
    model = ScriptedModel([call("list_files"), failure])
    events = go(model, tmp_path)
    done = events[-1]
    assert isinstance(done, RunDone) and sum(isinstance(e, RunDone) for e in events) == 1
    assert done.reason == "error" and type(failure).__name__ in done.error and len(done.steps) == 1
    assert done.steps[0].tool_results and done.messages[-1]["role"] == "tool"


def test_a_failure_outside_the_model_also_ends_with_a_run_done(tmp_path, monkeypatch):
    real = agent_graph.read_reply
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("bug in the reply reader")
        return real(*args, **kwargs)

    monkeypatch.setattr(agent_graph, "read_reply", flaky)
    done = go(ScriptedModel([call("list_files"), "never read"]), tmp_path)[-1]
    assert done.reason == "error" and "bug in the reply reader" in done.error and len(done.steps) == 1


def test_stop_during_generation_keeps_the_partial_step_out_of_the_conversation(tmp_path):
    model = ScriptedModel([call("list_files"), LONG_TEXT])
    polls = []

    def stop_three_pieces_into_step_two() -> bool:  # polled by the node and by the model between pieces
        if len(model.calls) < 2:
            return False
        polls.append(1)
        return len(polls) > 3

    events = list(run_agent(model, "task", config=AgentConfig(mode="drafter", settings=GenerationSettings(
        max_new_tokens=400)), workspace=tmp_path / "ws", should_stop=stop_three_pieces_into_step_two))
    done = events[-1]
    assert "".join(e.text for e in of_type(events, TextDelta) if e.index == 2) == "".join(split_pieces(LONG_TEXT)[:3])
    assert done.reason == "stopped" and [s.kind for s in done.steps] == ["tool_call", "stopped"]
    assert done.steps[1].stopped and not done.steps[0].stopped
    assert [m["role"] for m in done.messages] == ["system", "user", "assistant", "tool"]


# ---- follow-ups ----

def test_a_follow_up_continues_the_conversation_from_plain_history(tmp_path):
    first = go(ScriptedModel([call("write_file", path="a.py", content="x = 1\n"), "Wrote a.py."]), tmp_path)[-1]
    assert first.reason == "answered"
    assert first.messages[-1] == {"role": "assistant", "content": "Wrote a.py."}
    history = pickle.loads(pickle.dumps(first.messages))  # what crosses a ZeroGPU worker boundary
    model = ScriptedModel([call("read_file", path="a.py"), "It holds x = 1."])
    second = go(model, tmp_path, "Now read it back.", history=history)[-1]
    assert second.reason == "answered" and second.final_answer == "It holds x = 1."
    seen = model.calls[0].messages
    assert [m["role"] for m in seen] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert seen[:-1] == list(first.messages) and seen[-1] == {"role": "user", "content": "Now read it back."}
    assert "1\tx = 1" in second.steps[0].tool_results[0].output  # same workspace
    ids = [c["id"] for m in second.messages for c in m.get("tool_calls", [])]
    assert len(ids) == len(set(ids)) == 2  # call ids stay unique across the turns


def test_history_gets_this_runs_system_prompt(tmp_path):
    history = [{"role": "system", "content": "an old prompt"}, {"role": "user", "content": "hi"},
               {"role": "assistant", "content": "hello"}]
    model = ScriptedModel(["ok"])
    go(model, tmp_path, "again", history=history)
    seen = model.calls[0].messages
    assert seen[0]["content"] != "an old prompt" and seen[0]["content"].startswith("You are a coding agent.")
    assert seen[1:] == [*history[1:], {"role": "user", "content": "again"}]
    assert history[0]["content"] == "an old prompt"  # the caller's list is not touched


def test_a_checkpointer_keyed_by_thread_carries_the_conversation(tmp_path):
    saver = InMemorySaver()
    go(ScriptedModel(["First answer."]), tmp_path, "first", checkpointer=saver, thread_id="browser-1")
    model = ScriptedModel(["Second answer."])
    done = go(model, tmp_path, "second", checkpointer=saver, thread_id="browser-1")[-1]
    assert [m["content"] for m in model.calls[0].messages[1:]] == ["first", "First answer.", "second"]
    other = ScriptedModel(["Fresh."])
    go(other, tmp_path, "elsewhere", checkpointer=saver, thread_id="browser-2")
    assert [m["role"] for m in other.calls[0].messages] == ["system", "user"]
    assert done.messages[-1]["content"] == "Second answer."


@pytest.mark.parametrize("history", [[{"role": "wizard", "content": "x"}], [{"content": "no role"}],
                                     [{"role": "user", "content": {"not": "text"}}]])
def test_bad_history_is_refused_before_any_model_call(tmp_path, history):
    model = ScriptedModel(["never"])
    done = go(model, tmp_path, history=history)[-1]
    assert done.reason == "error" and "history[0]" in done.error and model.calls == []


# ---- the task bound and the records ----

def test_a_task_over_the_limit_is_refused_before_any_model_call(tmp_path):
    model = ScriptedModel(["never"])
    events = go(model, tmp_path, "x" * (MAX_TASK_CHARS + 1))
    assert len(events) == 1 and events[0].reason == "error" and model.calls == []
    assert f"limit is {MAX_TASK_CHARS:,}" in events[0].error
    assert go(ScriptedModel(["ok"]), tmp_path, "x" * MAX_TASK_CHARS)[-1].reason == "answered"


def test_run_done_carries_what_the_export_needs(tmp_path):
    done = go(ScriptedModel(["ok"]), tmp_path, "the task")[-1]
    assert done.task == "the task" and done.system_prompt.startswith("You are a coding agent.")
    assert done.messages[0] == {"role": "system", "content": done.system_prompt}
    assert {s["function"]["name"] for s in done.tool_specs} >= {"read_file", "edit_file"}
    assert done.started_at.endswith("Z") and len(done.started_at) == 20


def test_every_event_pickles_and_compares_equal(tmp_path):
    events = go(ScriptedModel([call("write_file", path="a.py", content="1"), LONG_TEXT, "done"]), tmp_path,
                mode="compare")
    for event in events:
        assert pickle.loads(pickle.dumps(event)) == event


def test_one_default_step_limit():
    from agents import run as cli

    assert AgentConfig().max_steps == agents.DEFAULT_MAX_STEPS
    assert cli.parse_args(["task"]).max_steps == agents.DEFAULT_MAX_STEPS


def test_agent_state_has_an_input_json_schema(tmp_path):
    graph = build_agent(ScriptedModel([]), Toolbox(tmp_path), AgentConfig())
    schema = graph.get_input_jsonschema()
    assert set(schema["properties"]) == set(AgentState.__annotations__)
    assert schema["properties"]["messages"]["type"] == "array"


def test_step_records_say_each_runs_stop_reason(tmp_path):
    done = go(ScriptedModel([LONG_TEXT, "ok"]), tmp_path, mode="compare")[-1]
    assert done.steps[0].stop_reasons == {"baseline": "max_new_tokens", "drafter": "max_new_tokens"}
    assert done.steps[1].stop_reasons == {"baseline": "eos", "drafter": "eos"}
    assert of_type(go(ScriptedModel(["ok"]), tmp_path, mode="baseline"), ModelDone)[0].step.stop_reasons == {
        "baseline": "eos"}


def test_a_foreign_call_format_is_told_to_the_model_never_taken_as_the_answer(tmp_path):
    model = ScriptedModel(["```tool_code\nimport os\nprint(os.listdir('.'))\n```", "Done."])
    done = go(model, tmp_path)[-1]
    assert [s.kind for s in done.steps] == ["format_error", "final_answer"] and done.final_answer == "Done."
    told = model.calls[1].messages[-1]
    assert told["role"] == "user" and "tool_code" in told["content"] and "native tool-call format" in told["content"]


def test_e2b_tool_code_calls_run_and_are_recorded_in_the_native_format(tmp_path):
    model = ScriptedModel(["```tool_code\nwrite_file(path='a.py', content='x')\n```", "Wrote it."])
    done = go(model, tmp_path)[-1]
    assert done.steps[0].kind == "tool_call" and (tmp_path / "ws" / "a.py").read_text() == "x"
    assert model.calls[1].messages[-2]["tool_calls"][0]["function"] == {
        "name": "write_file", "arguments": {"path": "a.py", "content": "x"}}
