"""agents.chat_model: a protocol.ChatModel as LangChain users expect it, inside LangGraph's and LangChain's
own agents, streamed, with bound settings, structured output and the engine's stats."""

from __future__ import annotations

import asyncio
import warnings
from typing import Literal

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from pydantic import BaseModel

from agents.chat_model import GemmaChatModel, to_chat_messages
from agents.scripted import ScriptedModel
from tests.agents.helpers import Q, call

MARKUP = ("<|", "|>", "call:")


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


THINK_THEN_CALL = "<|channel>thought\nUse the tool.<channel|>" + call("multiply", a=6, b=7)


def small_graph(llm):
    """model -> tools -> model ... -> end, the shape of the agent graph, with LangChain messages."""
    tools = {"multiply": multiply}

    def call_model(state: MessagesState) -> dict:
        return {"messages": [llm.invoke(state["messages"])]}

    def run_tools(state: MessagesState) -> dict:
        calls = state["messages"][-1].tool_calls
        return {"messages": [ToolMessage(str(tools[c["name"]].invoke(c["args"])), tool_call_id=c["id"],
                                         name=c["name"]) for c in calls]}

    def route(state: MessagesState) -> Literal["tools", "__end__"]:
        return "tools" if state["messages"][-1].tool_calls else END

    graph = StateGraph(MessagesState)
    graph.add_node("call_model", call_model)
    graph.add_node("tools", run_tools)
    graph.add_edge(START, "call_model")
    graph.add_conditional_edges("call_model", route)
    graph.add_edge("tools", "call_model")
    return graph.compile()


def test_bound_tools_reach_the_model_and_calls_come_back_as_tool_calls():
    model = ScriptedModel([THINK_THEN_CALL, "6 times 7 is 42."])
    llm = GemmaChatModel(model=model).bind_tools([multiply])
    result = small_graph(llm).invoke({"messages": [SystemMessage("Be brief."), HumanMessage("6*7?")]})
    messages = result["messages"]
    first = messages[2]
    assert isinstance(first, AIMessage) and first.tool_calls[0]["name"] == "multiply"
    assert first.tool_calls[0]["args"] == {"a": 6, "b": 7} and first.content == ""
    assert first.additional_kwargs["reasoning_content"] == "Use the tool."
    assert messages[3].content == "42" and messages[-1].content == "6 times 7 is 42."
    assert model.calls[0].tools[0]["function"]["name"] == "multiply"
    second_prompt = model.calls[1].messages
    assert second_prompt[2]["tool_calls"][0]["function"] == {"name": "multiply", "arguments": {"a": 6, "b": 7}}
    assert second_prompt[2]["reasoning"] == "Use the tool."
    assert second_prompt[3] == {"role": "tool", "tool_call_id": first.tool_calls[0]["id"], "name": "multiply",
                                "content": "42"}


def test_a_malformed_call_is_an_invalid_tool_call_never_a_call():
    llm = GemmaChatModel(model=ScriptedModel([f"<|tool_call>call:multiply{{a:{Q}6"]))
    message = llm.invoke("6*7?")
    assert message.tool_calls == [] and message.invalid_tool_calls[0]["name"] == "multiply"
    assert "Could not read" in message.invalid_tool_calls[0]["args"]
    assert message.response_metadata["step_kind"] == "format_error"


def test_stream_yields_token_chunks_without_markup_and_adds_up_to_invoke():
    turns = [THINK_THEN_CALL + " Done <b>soon</b>."]
    chunks = list(GemmaChatModel(model=ScriptedModel(turns)).bind_tools([multiply]).stream("6*7?"))
    assert len(chunks) > 3 and all(isinstance(c, AIMessageChunk) for c in chunks)
    assert not any(mark in c.content for c in chunks for mark in MARKUP)
    reasoning = [c.additional_kwargs.get("reasoning_content", "") for c in chunks]
    assert "".join(reasoning) == "Use the tool." and sum(bool(r) for r in reasoning) >= 2  # streamed, not at the end
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    invoked = GemmaChatModel(model=ScriptedModel(turns)).bind_tools([multiply]).invoke("6*7?")
    assert whole.content == invoked.content == "Done <b>soon</b>."
    assert whole.tool_calls == invoked.tool_calls and whole.tool_calls[0]["args"] == {"a": 6, "b": 7}
    assert chunks[-1].tool_call_chunks and chunks[-1].response_metadata["finish_reason"] == "tool_calls"


def test_bound_temperature_max_tokens_and_stop_are_honoured():
    model = ScriptedModel(["Counting: one two three STOP four five six seven"])
    llm = GemmaChatModel(model=model).bind(temperature=0.7, max_tokens=40, stop=["STOP"])
    message = llm.invoke("count")
    assert (model.calls[0].settings.temperature, model.calls[0].settings.max_new_tokens) == (0.7, 40)
    assert message.content == "Counting: one two three"
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.response_metadata["stop_reason"] == "stopped"  # the engine was told to stop
    short = GemmaChatModel(model=ScriptedModel(["a b c d e f g h"]), max_tokens=3).invoke("x")
    assert short.content == "a b c" and short.response_metadata["finish_reason"] == "length"


def test_engine_stats_come_back_in_response_metadata_and_usage():
    model = ScriptedModel(["Plain answer here."])
    message = GemmaChatModel(model=model).invoke("hi")
    meta = message.response_metadata
    assert meta["model_name"] == "scripted/target" and meta["used_drafter"] is True
    assert meta["acceptance_rate"] is not None and meta["tokens_per_s"] > 0 and meta["drafter"]["rounds"] >= 1
    assert message.usage_metadata["output_tokens"] == 4 == meta["new_tokens"]
    baseline = GemmaChatModel(model=ScriptedModel(["x"]), use_drafter=False).invoke("hi")
    assert baseline.response_metadata["used_drafter"] is False and baseline.response_metadata["acceptance_rate"] is None


def test_with_structured_output_works_through_a_tool():
    class Answer(BaseModel):
        """The answer with a reason."""
        value: int
        reason: str

    model = ScriptedModel([call("Answer", value=42, reason="six times seven")])
    answer = GemmaChatModel(model=model).with_structured_output(Answer).invoke([SystemMessage("Be exact."),
                                                                             HumanMessage("6*7?")])
    assert answer == Answer(value=42, reason="six times seven")
    assert model.calls[0].tools[0]["function"]["name"] == "Answer"
    assert model.calls[0].messages[0]["content"] == "Be exact.\nReply with a tool call."  # tool_choice="any"


def test_call_ids_are_unique_across_a_conversation():
    model = ScriptedModel([call("multiply", a=1, b=2), call("multiply", a=3, b=4), "done"])
    result = small_graph(GemmaChatModel(model=model).bind_tools([multiply])).invoke({"messages": [HumanMessage("go")]})
    ids = [c["id"] for m in result["messages"] if isinstance(m, AIMessage) for c in m.tool_calls]
    assert len(ids) == 2 and len(set(ids)) == 2


def scripted_react_turns():
    return ScriptedModel(["<|channel>thought\nMultiply.<channel|>" + call("multiply", a=6, b=7), "It is 42."])


def test_langgraph_prebuilt_react_agent_runs_a_streamed_tool_loop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langgraph.prebuilt import create_react_agent
        agent = create_react_agent(GemmaChatModel(model=scripted_react_turns()), [multiply])
    tokens, final = [], None
    for mode, item in agent.stream({"messages": [HumanMessage("6*7?")]}, stream_mode=["messages", "values"]):
        if mode == "messages":
            chunk, _ = item
            if isinstance(chunk, AIMessageChunk):
                tokens.append(chunk.content)
        else:
            final = item
    assert "".join(tokens) == "It is 42." and len(tokens) > 2
    assert not any(mark in t for t in tokens for mark in MARKUP)
    roles = [type(m).__name__ for m in final["messages"]]
    assert roles == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert final["messages"][2].content == "42" and final["messages"][-1].content == "It is 42."


def test_langchain_create_agent_runs_a_streamed_tool_loop():
    agents_module = pytest.importorskip("langchain.agents")
    agent = agents_module.create_agent(GemmaChatModel(model=scripted_react_turns()), tools=[multiply])
    tokens = [chunk.content for chunk, _ in agent.stream({"messages": [HumanMessage("6*7?")]}, stream_mode="messages")
              if isinstance(chunk, AIMessageChunk)]
    assert "".join(tokens) == "It is 42." and not any(mark in t for t in tokens for mark in MARKUP)
    final = agents_module.create_agent(GemmaChatModel(model=scripted_react_turns()), tools=[multiply]).invoke(
        {"messages": [HumanMessage("6*7?")]})
    assert [type(m).__name__ for m in final["messages"]] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert final["messages"][2].content == "42"


def test_astream_events_yields_chat_model_stream_events():
    async def collect():
        llm = GemmaChatModel(model=ScriptedModel(["Plain streamed answer."]))
        return [e async for e in llm.astream_events("hi", version="v2")]

    events = asyncio.run(collect())
    streamed = [e["data"]["chunk"].content for e in events if e["event"] == "on_chat_model_stream"]
    assert "".join(streamed) == "Plain streamed answer." and len(streamed) >= 3


def test_message_conversion_keeps_ai_text_only_without_calls():
    ai = AIMessage("thinking aloud", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1"}],
                   additional_kwargs={"reasoning_content": "why"})
    out = to_chat_messages([HumanMessage("q"), ai, ToolMessage("r", tool_call_id="c1", name="f"), AIMessage("a")])
    assert out[1] == {"role": "assistant", "content": "", "reasoning": "why",
                      "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]}
    assert out[3] == {"role": "assistant", "content": "a"}
