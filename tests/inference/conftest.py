"""Shared fixtures: one tiny engine of each kind per session ("fast" is our loop, "transformers" the reference)."""

from __future__ import annotations

import pytest

from inference import load_engine


@pytest.fixture(scope="session")
def tiny_engine():
    return load_engine("tiny")


@pytest.fixture(scope="session")
def tiny_reference():
    return load_engine("tiny", engine="transformers")


@pytest.fixture(params=["fast", "transformers"])
def engine(request, tiny_engine, tiny_reference):
    """Each behaviour test runs on both engines."""
    return tiny_engine if request.param == "fast" else tiny_reference
