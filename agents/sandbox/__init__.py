"""The sandbox that runs model-written code: public entry points only (see docs/SECURITY.md)."""

from .api import ExecResult, Sandbox, SandboxLimits
from .probe import IsolationProbe, probe_isolation
from .supervisor import harden_server_process, open_sandbox
from .workspace import make_workspace, remove_workspace

__all__ = [
    "ExecResult", "IsolationProbe", "Sandbox", "SandboxLimits", "harden_server_process", "make_workspace",
    "open_sandbox", "probe_isolation", "remove_workspace",
]
