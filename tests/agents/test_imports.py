"""The agent package stays free of torch, transformers and gradio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_agents_pulls_in_no_torch_transformers_or_gradio():
    code = ("import sys, agents, agents.graph, agents.parser, agents.call_syntax, agents.tools, agents.files, "
            "agents.file_tools, agents.prompts, agents.turns, agents.segments, agents.report, agents.scripted, "
            "agents.chat_model, agents.run\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'gradio') if m in sys.modules)\n"
            "print('HEAVY', heavy)\n"
            "assert not heavy, heavy")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "HEAVY []" in out.stdout


def test_package_exports_the_public_names():
    import agents

    for name in ("AgentConfig", "run_agent", "RunDone", "StepStarted", "TextDelta", "ToolStarted", "StepDone",
                 "ModelDone", "RunPhase", "MAX_TASK_CHARS", "DEFAULT_MAX_STEPS", "check_task"):
        assert hasattr(agents, name), name
