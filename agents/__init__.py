"""The LangGraph coding agent: run_agent streams a run's events; AgentConfig says how it runs.

Imports no torch, transformers or gradio: the model arrives as a protocol.ChatModel.
"""

from agents.events import (
    DEFAULT_MAX_STEPS, MAX_TASK_CHARS, AgentConfig, AgentEvent, ModelDone, RunDone, RunPhase, Step, StepDone,
    StepStarted, TextDelta, ToolCall, ToolResult, ToolStarted,
)
from agents.graph import check_task, run_agent

__all__ = [
    "DEFAULT_MAX_STEPS", "MAX_TASK_CHARS", "AgentConfig", "AgentEvent", "ModelDone", "RunDone", "RunPhase", "Step",
    "StepDone", "StepStarted", "TextDelta", "ToolCall", "ToolResult", "ToolStarted", "check_task", "run_agent",
]
