"""Test helpers that install the project the way users do: a copy in a private (0700) folder with a
virtual environment of its own inside it, optionally owned by a throwaway unprivileged uid.

The staged venv links the running venv's packages in through a .pth file (so the staged server
imports langgraph and friends without a download) and holds its own copy of pytest, which sandboxed
children import from the staged venv like they would on a Space.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROJECT = ["agents", "protocol.py", "app.py", "pytest.ini", "tests/__init__.py", "tests/sandbox"]
CHILD_PACKAGES = ["_pytest", "pytest", "pluggy", "iniconfig", "packaging", "pygments", "py.py"]
THROWAWAY_UIDS = range(61000, 61900)


def private_folder(prefix: str) -> Path:
    """A fresh 0700 folder under TMPDIR, like `mktemp -d` or a home directory."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def copy_project(target: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for rel in PROJECT:
        source, dest = REPO / rel, target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, dest)
    return target


def make_venv(target: Path) -> Path:
    """A venv of the running base interpreter at `target`; returns its python."""
    subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", str(target)], check=True)
    folders = package_folders()
    staged = target / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (staged / "running-venv.pth").write_text("".join(f"{p}\n" for p in folders))
    for name in CHILD_PACKAGES:
        source = next((Path(p) / name for p in folders if (Path(p) / name).exists()), Path("/nonexistent"))
        if source.is_dir():
            shutil.copytree(source, staged / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, staged / name)
    return target / "bin" / "python"


def free_uid() -> int:
    """An unused uid for a throwaway user: no passwd entry, no running process."""
    running = set()
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            running.add(os.stat(f"/proc/{p}").st_uid)
        except OSError:
            continue
    with open("/etc/passwd") as f:
        known = {int(line.split(":")[2]) for line in f if line.count(":") >= 3}
    return random.choice([u for u in THROWAWAY_UIDS if u not in running and u not in known])


def chown_tree(path: Path, uid: int) -> None:
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(folder, name), uid, uid)
    os.lchown(path, uid, uid)


def package_folders() -> list[str]:
    """The folders the running interpreter imports packages from (a staged venv's .pth points at them)."""
    return [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]


def run_as(uid: int | None, argv: list[str], cwd: Path, env: dict[str, str],
           timeout_s: float) -> subprocess.CompletedProcess:
    """Run argv as `uid` (None: as this process), the interpreter and the running venv's packages
    reachable even where they sit under /root or another 0700 folder (a CI clone)."""
    if uid is not None:
        spec = {"uid": uid, "reach": [sys.base_prefix, *package_folders()], "cwd": str(cwd), "env": env,
                "argv": argv}
        argv = [sys.executable, "-I", "-S", str(Path(__file__).with_name("as_user.py")), json.dumps(spec)]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)


def remove_folder(path: Path) -> None:
    """Remove a staging folder whatever depth or modes the tests left in it."""
    from agents.sandbox import tree

    if path.exists():
        os.chmod(path, 0o700)
        tree.remove_contents(path)
        path.rmdir()


def kill_uid(uid: int) -> None:
    """Whatever a throwaway user left running."""
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and os.stat(f"/proc/{p}").st_uid == uid:
                os.kill(int(p), 9)
        except OSError:
            continue
