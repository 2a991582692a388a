"""Shared fixture: one tiny engine per session."""

from __future__ import annotations

import pytest

from inference import load_engine


@pytest.fixture(scope="session")
def tiny_engine():
    return load_engine("tiny")
