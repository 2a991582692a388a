"""The LangGraph coding agent: run_agent streams a run's events; AgentConfig says how it runs.

Imports no torch, transformers or gradio: the model arrives as a protocol.ChatModel.
"""

from agents.events import (
    AgentConfig, AgentEvent, ModelDone, RunDone, RunPhase, Step, StepDone, StepStarted, TextDelta, ToolCall,
    ToolResult, ToolStarted,
)
from agents.graph import run_agent

__all__ = [
    "AgentConfig", "AgentEvent", "ModelDone", "RunDone", "RunPhase", "Step", "StepDone", "StepStarted", "TextDelta",
    "ToolCall", "ToolResult", "ToolStarted", "run_agent",
]
