"""`python -m agents.sandbox`: print the isolation probe, the sandbox's decision and a sample run,
so an operator can see why code execution is (un)available on this machine."""

from __future__ import annotations

import logging
import sys

from . import SandboxLimits, make_workspace, open_sandbox, probe_isolation, remove_workspace


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    probe = probe_isolation()
    print(probe.summary())
    sandbox = open_sandbox(probe=probe)
    print(f"\nSandbox: {'available' if sandbox.available else 'UNAVAILABLE'}: {sandbox.reason}")
    if not sandbox.available:
        return 1
    workspace = make_workspace()
    try:
        result = sandbox.run(["python", "-c", "import sys; print('sandboxed', sys.version.split()[0])"], workspace,
                             SandboxLimits(wall_s=15))
    finally:
        remove_workspace(workspace)
    print(f"Sample run: exit {result.exit_code}, {result.duration_s:.2f} s, output {result.output.strip()!r}"
          + (f", note {result.note}" if result.note else ""))
    return 0 if result.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
