"""agents.chat_model: a protocol.ChatModel as a LangChain chat model, inside a small LangGraph graph."""

from __future__ import annotations

from typing import Literal

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph

from agents.chat_model import GemmaChatModel, to_chat_messages
from agents.scripted import ScriptedModel
from tests.agents.helpers import Q, call


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


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
    model = ScriptedModel(["<|channel>thought\nUse the tool.<channel|>" + call("multiply", a=6, b=7),
                           "6 times 7 is 42."])
    llm = GemmaChatModel(model=model).bind_tools([multiply])
    result = small_graph(llm).invoke({"messages": [SystemMessage("Be brief."), HumanMessage("6*7?")]})
    messages = result["messages"]
    first = messages[2]
    assert isinstance(first, AIMessage) and first.tool_calls[0]["name"] == "multiply"
    assert first.tool_calls[0]["args"] == {"a": 6, "b": 7}
    assert first.additional_kwargs["reasoning"] == "Use the tool."
    assert messages[3].content == "42" and messages[-1].content == "6 times 7 is 42."
    assert model.calls[0].tools[0]["function"]["name"] == "multiply"
    second_prompt = model.calls[1].messages
    assert second_prompt[2]["tool_calls"][0]["function"] == {"name": "multiply", "arguments": {"a": 6, "b": 7}}
    assert second_prompt[3] == {"role": "tool", "tool_call_id": first.tool_calls[0]["id"], "name": "multiply",
                                "content": "42"}


def test_malformed_call_becomes_an_invalid_tool_call():
    llm = GemmaChatModel(model=ScriptedModel([f"<|tool_call>call:multiply{{a:{Q}6"]))
    message = llm.invoke("6*7?")
    assert message.tool_calls == [] and message.invalid_tool_calls[0]["name"] == "multiply"
    assert "Could not read" in message.invalid_tool_calls[0]["error"]


def test_tokens_stream_through_callbacks_and_stats_come_back():
    class Tokens(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str, **kwargs) -> None:
            self.tokens.append(token)

    model, handler = ScriptedModel(["Plain answer here."]), Tokens()
    message = GemmaChatModel(model=model, use_drafter=False).invoke("hi", config={"callbacks": [handler]})
    assert "".join(handler.tokens) == "Plain answer here." and len(handler.tokens) == 4
    assert message.content == "Plain answer here."
    assert message.response_metadata["used_drafter"] is False and model.calls[0].use_drafter is False
    assert message.usage_metadata["output_tokens"] == 4


def test_message_conversion_keeps_ai_text_only_without_calls():
    ai = AIMessage("thinking aloud", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1"}])
    out = to_chat_messages([HumanMessage("q"), ai, ToolMessage("r", tool_call_id="c1", name="f"), AIMessage("a")])
    assert out[1] == {"role": "assistant", "content": "",
                      "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]}
    assert out[3] == {"role": "assistant", "content": "a"}
