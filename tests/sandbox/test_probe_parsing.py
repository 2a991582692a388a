"""Pure parsers behind the probe and the process scan, and the policy's path decisions."""

from __future__ import annotations

import os
import struct

import pytest

from agents.sandbox import SandboxLimits, landlock, policy
from agents.sandbox.probe import (describe_user_namespaces, parse_capabilities, parse_cgroup_paths,
                                  parse_meminfo_total, parse_status_field)
from agents.sandbox.procs import ProcInfo, descendants, parse_deleted_mappings, parse_stat, parse_status_uid

STATUS = "Name:\tpython\nUid:\t62001\t62001\t62001\t62001\nSeccomp:\t2\nCapEff:\t00000000000000c0\n"


@pytest.mark.parametrize("field,expected", [
    ("Seccomp", "2"), ("CapEff", "00000000000000c0"), ("Name", "python"), ("NoNewPrivs", None),
])
def test_status_fields_are_read_by_name(field, expected):
    assert parse_status_field(STATUS, field) == expected


@pytest.mark.parametrize("mask,expected", [
    ("00000000000000c0", {6, 7}), ("0000000000000000", set()), (None, set()), ("zz", set()),
    ("0000000000200000", {21}),
])
def test_capability_masks_decode_to_bits(mask, expected):
    assert parse_capabilities(mask) == expected


@pytest.mark.parametrize("max_ns,unpriv,expected", [
    (None, None, "unknown"), ("0\n", None, "disabled"), ("96365\n", None, "enabled (max_user_namespaces=96365)"),
    ("10\n", "0\n", "unprivileged creation disabled"),
])
def test_user_namespace_description(max_ns, unpriv, expected):
    assert expected in describe_user_namespaces(max_ns, unpriv)


@pytest.mark.parametrize("text,expected", [
    ("42 (python) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0",
     ProcInfo(42, "S", 1, 42, 42, 555)),
    ("43 (evil) Z 9) R 7 43 40 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0",
     ProcInfo(43, "R", 7, 43, 40, 777)),
    ("44 (a b) S 1", None),
    ("garbage", None),
])
def test_stat_lines_parse_after_the_last_parenthesis(text, expected):
    pid = int(text.split()[0]) if text[0].isdigit() else 0
    assert parse_stat(pid, text) == expected


@pytest.mark.parametrize("text,expected", [(STATUS, 62001), ("Name:\tx\n", None), ("Uid:\t\n", None)])
def test_real_uid_is_read_from_status(text, expected):
    assert parse_status_uid(text) == expected


def test_descendants_follow_parent_links_only_from_the_roots():
    table = [ProcInfo(10, "S", 1, 10, 10, 0), ProcInfo(11, "S", 10, 10, 10, 0), ProcInfo(12, "S", 11, 12, 12, 0),
             ProcInfo(20, "S", 1, 20, 20, 0)]
    assert sorted(p.pid for p in descendants(table, {10})) == [10, 11, 12]


@pytest.mark.parametrize("abi,size,scoped", [(1, 8, None), (3, 8, None), (4, 16, None), (6, 24, 3), (7, 24, 3)])
def test_landlock_ruleset_attr_matches_the_abi(abi, size, scoped):
    attr = landlock.ruleset_attr(abi)
    assert len(attr) == size
    if scoped is not None:
        assert struct.unpack("=QQQ", attr)[2] == scoped


@pytest.mark.parametrize("abi,has_refer,has_truncate,has_ioctl", [
    (1, False, False, False), (2, True, False, False), (3, True, True, False), (5, True, True, True),
])
def test_landlock_handles_every_right_the_abi_knows(abi, has_refer, has_truncate, has_ioctl):
    rights = landlock.handled_fs(abi)
    assert rights & landlock.FS_MAKE_SYM
    assert bool(rights & landlock.FS_REFER) == has_refer
    assert bool(rights & landlock.FS_TRUNCATE) == has_truncate
    assert bool(rights & landlock.FS_IOCTL_DEV) == has_ioctl


def test_child_environment_is_the_allowlist_only(monkeypatch, tmp_path):
    monkeypatch.setenv("SOMETHING_SECRET", "x")
    env = policy.child_environment(tmp_path)
    assert set(env) == {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONNOUSERSITE",
                        "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS",
                        "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}
    assert env["HOME"] == env["TMPDIR"] == str(tmp_path) and env["CUDA_VISIBLE_DEVICES"] == ""


def test_landlock_rules_grant_write_only_to_the_workspace(tmp_path):
    writers = [p for p, rights in policy.landlock_rules(tmp_path) if rights & landlock.FS_WRITE_FILE]
    assert writers == ["/dev/null", str(tmp_path)]


def test_blocking_ancestor_finds_a_private_directory(tmp_path):
    private = tmp_path / "private"
    (private / "inner").mkdir(parents=True)
    tmp_path.chmod(0o755)
    private.chmod(0o700)
    assert policy.blocking_ancestor(str(private / "inner")) in (str(private), *map(str, tmp_path.parents))


def test_private_view_binds_only_what_landlock_allows_and_only_the_workspace_writable(tmp_path):
    view = policy.private_view(tmp_path, 1 << 20)
    binds = {path: kind for kind, path in view["binds"]}
    assert [p for p, kind in binds.items() if kind == "rw"] == [str(tmp_path)]
    assert binds["/usr"] == "ro" and binds["/dev/null"] == "dev"
    for folder in policy.interpreter_dirs():
        real = os.path.realpath(folder)
        assert any(policy.is_under(real, p) and kind == "ro" for p, kind in binds.items()), folder
    rules = [path for path, _ in policy.landlock_rules(tmp_path)]
    allowed = set(rules) | {os.path.realpath(p) for p in rules}
    for path in binds:
        assert any(policy.is_under(path, a) for a in allowed), f"{path} is in the view but Landlock denies it"
    for link, _ in view["symlinks"]:
        assert not any(policy.is_under(link, p) for p in binds)
    assert view["shm_bytes"] == 1 << 20


@pytest.mark.parametrize("processes,memory_mib,budget_gib,tasks,as_mib,clamped", [
    (32, 1024, 64, 32, 1024, False),  # fits: unchanged
    (32, 1024, 12, 11, 1024, True),  # fewer tasks first
    (32, 1024, 4, 8, 458, True),  # never fewer than 8 tasks: less address space instead
    (4, 256, 12, 4, 256, False),
])
def test_run_memory_bound_fits_the_budget(processes, memory_mib, budget_gib, tasks, as_mib, clamped):
    limits = SandboxLimits(processes=processes, memory_bytes=memory_mib << 20)
    b = policy.run_bounds(limits, budget_gib << 30, 16 << 20, 212992)
    assert (b.tasks, b.as_bytes >> 20, b.clamped) == (tasks, as_mib, clamped)
    assert b.bound_bytes <= max(budget_gib << 30, b.tasks * ((64 << 20) + policy.NOFILE * 212992) + (16 << 20))
    assert b.bound_bytes == b.tasks * (b.as_bytes + policy.NOFILE * 212992) + (16 << 20)


def test_meminfo_and_cgroup_paths_parse():
    assert parse_meminfo_total("MemTotal:       24684092 kB\nMemFree: 1 kB\n") == 24684092 * 1024
    assert parse_meminfo_total("nothing") == 0
    text = "9:name=systemd:/\n4:memory:/process_api/abc\n0::/user.slice/app\n"
    assert parse_cgroup_paths(text) == {"memory": "/process_api/abc", "v2": "/user.slice/app"}


def test_deleted_mappings_are_read_from_maps():
    maps = ("7f00-7f01 rw-s 00000000 fd:01 1234 /ws/held (deleted)\n"
            "7f02-7f03 r-xp 00000000 fd:01 99 /usr/lib/libc.so.6\n"
            "7f04-7f05 rw-p 00000000 00:00 0 \n"
            "7f06-7f07 rw-s 00000000 00:01 77 /memfd:x (deleted)\n")
    assert parse_deleted_mappings(maps) == [("7f00-7f01", os.makedev(0xfd, 1), 1234, "/ws/held"),
                                            ("7f06-7f07", os.makedev(0, 1), 77, "/memfd:x")]
