"""A LangChain chat model over any protocol.ChatModel: `GemmaChatModel(model=engine)` in any LangChain or
LangGraph code (create_react_agent, create_agent, with_structured_output, .stream, astream_events).

Gemma 4's native tool calls come back as AIMessage.tool_calls (an unreadable call as an invalid tool
call, never run), thoughts as additional_kwargs["reasoning_content"], the engine's stats in
response_metadata. `_stream` yields AIMessageChunks of visible text and reasoning as tokens arrive, never
raw Gemma markup, and the calls as tool-call chunks at the end. The reply is read by agents.turns, the
same path the agent graph uses. Bound temperature, max_tokens and stop are honoured (stop sequences
by stopping the engine and cutting the text). Gemma has no forced tool choice: tool_choice "any",
"required" or a tool name adds one sentence to the system prompt asking for that call. Knows no torch.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
from typing import Any, Iterator, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict

from agents.turns import ReplyStreamer, read_reply, starts_in_thought
from protocol import GenerationResult, GenerationSettings, Message

_FINISH = {"eos": "stop", "max_new_tokens": "length", "stopped": "stop"}


def to_chat_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    """LangChain messages in the chat template's format (tool calls with mapping arguments)."""
    out: list[Message] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            out.append({"role": "system", "content": m.text})
        elif isinstance(m, HumanMessage):
            out.append({"role": "user", "content": m.text})
        elif isinstance(m, AIMessage):
            message: Message = {"role": "assistant", "content": "" if m.tool_calls else m.text}
            if m.tool_calls:
                message["tool_calls"] = [{"id": c["id"], "type": "function",
                                          "function": {"name": c["name"], "arguments": dict(c["args"])}}
                                         for c in m.tool_calls]
            reasoning = m.additional_kwargs.get("reasoning_content") or m.additional_kwargs.get("reasoning")
            if reasoning:
                message["reasoning"] = reasoning
            out.append(message)
        elif isinstance(m, ToolMessage):
            content = m.content if isinstance(m.content, str) else m.text
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "name": m.name or "", "content": content})
        else:
            raise ValueError(f"Unsupported message type {type(m).__name__}; use system, human, ai or tool messages.")
    return out


def _tool_choice_hint(tool_choice: Any, tools: Sequence[dict]) -> str | None:
    """The sentence that stands in for a forced tool choice, or None."""
    if tool_choice in (None, "auto", "none") or not tools:
        return None
    if isinstance(tool_choice, dict):
        tool_choice = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
    if tool_choice in ("any", "required", True):
        return "Reply with a tool call."
    return f"Reply with a call to the tool {tool_choice}."


class GemmaChatModel(BaseChatModel):
    """`GemmaChatModel(model=engine).bind_tools([...])`, for any protocol.ChatModel."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Any  # a protocol.ChatModel
    use_drafter: bool = True
    settings: GenerationSettings = GenerationSettings()
    temperature: float | None = None  # overrides settings.temperature
    max_tokens: int | None = None  # overrides settings.max_new_tokens
    stop: list[str] | None = None

    @property
    def _llm_type(self) -> str:
        return "gemma4-protocol-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_id": getattr(self.model, "model_id", None), "use_drafter": self.use_drafter}

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any):
        """Declare tools (LangChain tools, functions or OpenAI-style dicts) through the chat template."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _settings(self, kwargs: dict[str, Any]) -> GenerationSettings:
        temperature = kwargs.get("temperature", self.temperature)
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        changes = {k: v for k, v in (("temperature", temperature), ("max_new_tokens", max_tokens)) if v is not None}
        return dataclasses.replace(self.settings, **changes) if changes else self.settings

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop=stop, run_manager=run_manager, **kwargs))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        settings = self._settings(kwargs)
        tools = kwargs.get("tools") or []
        chat = to_chat_messages(messages)
        hint = _tool_choice_hint(kwargs.get("tool_choice"), tools)
        if hint:
            chat = ([{**chat[0], "content": f"{chat[0]['content']}\n{hint}"}, *chat[1:]] if chat and
                    chat[0]["role"] == "system" else [{"role": "system", "content": hint}, *chat])
        stops = [s for s in (stop if stop is not None else self.stop) or [] if s]
        streamer = ReplyStreamer(starts_in_thought=starts_in_thought(chat, settings))
        events: queue.Queue = queue.Queue()
        cancel = threading.Event()
        use_drafter = self.use_drafter and getattr(self.model, "drafter_id", None) is not None
        seen = {"raw": "", "cut_at": None}  # written by the worker only: the raw text and where a stop string hit

        def on_text(text: str) -> None:  # in the worker: a stop string stops the engine at its next poll
            if seen["cut_at"] is not None:
                return
            raw = seen["raw"] + text
            cut_at = min((i for s in stops if (i := raw.find(s)) != -1), default=None)
            if cut_at is not None:
                seen["cut_at"] = cut_at
                cancel.set()
                text = raw[:cut_at][len(seen["raw"]):]
            seen["raw"] = raw
            if text:
                events.put(("text", text))

        def work() -> None:
            try:
                events.put(("done", self.model.generate(chat, tools or None, use_drafter=use_drafter, settings=settings,
                                                        on_text=on_text, should_stop=cancel.is_set)))
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                events.put(("error", e))

        worker = threading.Thread(target=work, name="gemma-chat-model", daemon=True)
        worker.start()
        try:
            while True:
                kind, item = events.get()
                if kind == "error":
                    raise item
                if kind == "done":
                    cut_at = seen["cut_at"]
                    raw = item.text if cut_at is None else (
                        item.text[:cut_at] if item.text.startswith(seen["raw"][:cut_at]) else seen["raw"][:cut_at])
                    yield from self._final_chunks(item, raw, streamer, messages, settings, cut_at is not None,
                                                  run_manager)
                    return
                content, reasoning = streamer.feed(item)
                if content or reasoning:
                    yield self._chunk(AIMessageChunk(
                        content=content, additional_kwargs={"reasoning_content": reasoning} if reasoning else {}),
                        run_manager)
        finally:
            cancel.set()  # a consumer that stops reading stops the engine too
            worker.join()

    def _final_chunks(self, result: GenerationResult, raw: str, streamer: ReplyStreamer, messages: list[BaseMessage],
                      settings: GenerationSettings, stopped_by_sequence: bool,
                      run_manager: CallbackManagerForLLMRun | None) -> Iterator[ChatGenerationChunk]:
        turn = 1 + sum(isinstance(m, AIMessage) for m in messages)  # ids unique within the conversation
        reply = read_reply(raw, "eos" if stopped_by_sequence else result.stop_reason,
                           max_new_tokens=settings.max_new_tokens, call_id_prefix=f"call_{turn}",
                           starts_in_thought=streamer.starts_in_thought)
        content, reasoning = streamer.finish(reply)
        calls = [{"name": c.name, "args": json.dumps(c.arguments, ensure_ascii=False), "id": c.id, "index": i,
                  "type": "tool_call_chunk"} for i, c in enumerate(reply.calls)]
        if reply.error_call is not None:  # args that are not JSON: LangChain keeps it an invalid tool call
            calls.append({"name": reply.error_call.name, "args": f"unreadable call: {reply.parse_error}",
                          "id": reply.error_call.id, "index": len(calls), "type": "tool_call_chunk"})
        stats = result.stats
        drafter = stats.drafter
        metadata = {
            "model_name": getattr(self.model, "model_id", None), "drafter_name": getattr(self.model, "drafter_id", None),
            "finish_reason": "tool_calls" if reply.calls else "stop" if stopped_by_sequence
            else _FINISH[result.stop_reason],
            "stop_reason": result.stop_reason, "step_kind": reply.kind, "feedback": reply.feedback,
            "used_drafter": stats.used_drafter, "prompt_tokens": stats.prompt_tokens, "new_tokens": stats.new_tokens,
            "prefill_s": stats.prefill_s, "decode_s": stats.decode_s, "wall_s": stats.wall_s,
            "tokens_per_s": stats.tokens_per_s,
            "acceptance_rate": drafter.acceptance_rate if drafter else None,
            "mean_accepted_length": drafter.mean_accepted_length if drafter else None,
            "drafter": dataclasses.asdict(drafter) if drafter else None,
        }
        yield self._chunk(AIMessageChunk(
            content=content, additional_kwargs={"reasoning_content": reasoning} if reasoning else {},
            tool_call_chunks=calls, response_metadata=metadata, chunk_position="last",
            usage_metadata={"input_tokens": stats.prompt_tokens, "output_tokens": stats.new_tokens,
                            "total_tokens": stats.prompt_tokens + stats.new_tokens}), run_manager)

    @staticmethod
    def _chunk(message: AIMessageChunk, run_manager: CallbackManagerForLLMRun | None) -> ChatGenerationChunk:
        chunk = ChatGenerationChunk(message=message)
        if run_manager is not None:
            run_manager.on_llm_new_token(message.text, chunk=chunk)
        return chunk
