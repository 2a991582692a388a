"""Shared fixtures: one tiny engine per session, and a switch that makes the drafter always right."""

from __future__ import annotations

import contextlib

import pytest

from inference import load_engine


@pytest.fixture(scope="session")
def tiny_engine():
    return load_engine("tiny")


@contextlib.contextmanager
def drafter_always_accepted(engine):
    """Zero both models' final-norm output: every argmax is token 0, so every draft is accepted."""
    handles = [m.model.norm.register_forward_hook(lambda module, args, out: out * 0)
               for m in (engine.target, engine.drafter)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
