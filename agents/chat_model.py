"""A LangChain chat model over any protocol.ChatModel: Gemma 4 native tool calls as AIMessage.tool_calls.

LangChain's pipeline wrapper drops `tools`; this adapter passes them to the chat template through
`generate(..., tools=...)` and parses the raw output with agents.parser. Knows no torch.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict

from agents.parser import parse_output
from protocol import GenerationSettings, Message


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
            if m.additional_kwargs.get("reasoning"):
                message["reasoning"] = m.additional_kwargs["reasoning"]
            out.append(message)
        elif isinstance(m, ToolMessage):
            content = m.content if isinstance(m.content, str) else json.dumps(m.content, ensure_ascii=False)
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "name": m.name or "", "content": content})
        else:
            raise ValueError(f"Unsupported message type {type(m).__name__}; use system, human, ai or tool messages.")
    return out


class GemmaChatModel(BaseChatModel):
    """`GemmaChatModel(model=engine).bind_tools([...])` in any LangChain/LangGraph code."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Any  # a protocol.ChatModel
    use_drafter: bool = True
    settings: GenerationSettings = GenerationSettings()

    @property
    def _llm_type(self) -> str:
        return "gemma4-protocol-chat-model"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any):
        """Declare tools (LangChain tools, functions or OpenAI-style dicts) through the chat template."""
        if tool_choice not in (None, "auto"):
            raise ValueError("Gemma 4 has no forced tool choice; leave tool_choice unset or 'auto'.")
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        on_text = (lambda text: run_manager.on_llm_new_token(text)) if run_manager else None
        result = self.model.generate(to_chat_messages(messages), kwargs.get("tools") or None,
                                     use_drafter=self.use_drafter and self.model.drafter_id is not None,
                                     settings=self.settings, on_text=on_text)
        parsed = parse_output(result.text)
        calls = [{"name": c.name, "args": c.arguments, "id": f"call_{len(messages)}_{i}", "type": "tool_call"}
                 for i, c in enumerate(parsed.tool_calls, 1)]
        invalid = [] if parsed.error is None else [
            {"name": parsed.error_name, "args": None, "id": f"call_{len(messages)}_error", "error": parsed.error,
             "type": "invalid_tool_call"}]
        stats = result.stats
        message = AIMessage(
            content=parsed.answer, tool_calls=calls, invalid_tool_calls=invalid,
            additional_kwargs={"reasoning": parsed.thoughts} if parsed.thoughts else {},
            response_metadata={"model_name": self.model.model_id, "stop_reason": result.stop_reason,
                               "used_drafter": stats.used_drafter, "wall_s": stats.wall_s,
                               "acceptance_rate": stats.drafter.acceptance_rate if stats.drafter else None},
            usage_metadata={"input_tokens": stats.prompt_tokens, "output_tokens": stats.new_tokens,
                            "total_tokens": stats.prompt_tokens + stats.new_tokens})
        return ChatResult(generations=[ChatGeneration(message=message)])
