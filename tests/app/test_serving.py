"""Start-up and server settings: where we run, the owner's limits, CLI flags and their environment twins."""

from __future__ import annotations

import pytest

import app
from inference import PRESETS
from ui.settings import ServerSettings


@pytest.mark.parametrize("env,switch", [
    ({}, True),  # a local user switches freely
    ({"SPACE_ID": "me/playground"}, False),  # a shared Space: off unless the owner says so
    ({"SPACE_ID": "me/playground", "PLAYGROUND_ALLOW_MODEL_SWITCH": "1"}, True),
    ({"PLAYGROUND_ALLOW_MODEL_SWITCH": "0"}, False),
    ({"SPACES_ZERO_GPU": "true", "PLAYGROUND_ALLOW_MODEL_SWITCH": "1"}, False),  # ZeroGPU loads once, at start-up
])
def test_model_switching_is_an_owner_setting_off_on_a_space(env, switch):
    assert ServerSettings.from_env(env).allow_model_switch is switch


def test_settings_defaults_and_bounds():
    s = ServerSettings.from_env({})
    assert (s.zero_gpu, s.on_space, s.max_prompt_tokens, s.max_queue, s.gpu.cap_s) == (False, False, 16384, 8, 180)
    s = ServerSettings.from_env({"SPACES_ZERO_GPU": "1", "PLAYGROUND_MAX_PROMPT_TOKENS": "4096",
                                 "PLAYGROUND_GPU_DURATION_S": "120"})
    assert (s.zero_gpu, s.max_prompt_tokens, s.gpu.cap_s) == (True, 4096, 120)


def test_the_draft_length_is_the_drafters_own_unless_the_owner_sets_one():
    assert ServerSettings.from_env({}).draft_tokens is None  # app.py then asks inference.draft_tokens_for(model)
    assert ServerSettings.from_env({"PLAYGROUND_DRAFT_TOKENS": "3"}).draft_tokens == 3
    with pytest.raises(ValueError, match="at least 1"):
        ServerSettings.from_env({"PLAYGROUND_DRAFT_TOKENS": "0"})


@pytest.mark.parametrize("env,message", [
    ({"PLAYGROUND_MAX_PROMPT_TOKENS": "lots"}, "give a whole number"),
    ({"PLAYGROUND_MAX_PROMPT_TOKENS": "10"}, "at least 64"),
    ({"PLAYGROUND_ALLOW_MODEL_SWITCH": "maybe"}, "use 1 or 0"),
])
def test_bad_settings_say_what_to_write(env, message):
    with pytest.raises(ValueError, match=message):
        ServerSettings.from_env(env)


@pytest.mark.parametrize("argv, expected", [
    (["--model", "e2b", "--port", "9000"], ("e2b", 9000, "127.0.0.1", "fast", None)),
    (["--host", "0.0.0.0", "--engine", "transformers", "--dtype", "bf16"],
     (None, 7860, "0.0.0.0", "transformers", "bf16")),
])
def test_command_line_options(monkeypatch, argv, expected):
    for name in ("PLAYGROUND_MODEL", "PLAYGROUND_ENGINE", "PLAYGROUND_DTYPE", "GRADIO_SERVER_NAME", "HOST",
                 "GRADIO_SERVER_PORT", "PORT"):
        monkeypatch.delenv(name, raising=False)
    args = app.parse_args(argv)
    assert (args.model, args.port, args.host, args.engine, args.dtype) == expected


def test_unknown_engine_or_dtype_is_refused_by_the_parser(capsys):
    for argv in (["--engine", "vllm"], ["--dtype", "int4"]):
        with pytest.raises(SystemExit):
            app.parse_args(argv)
    assert "invalid choice" in capsys.readouterr().err


def test_environment_equivalents_for_spaces(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MODEL", "31b")
    monkeypatch.setenv("PLAYGROUND_ENGINE", "transformers")
    monkeypatch.setenv("PLAYGROUND_DTYPE", "fp32")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7861")
    args = app.parse_args([])
    assert (args.model, args.engine, args.dtype, args.host, args.port) == ("31b", "transformers", "fp32", "0.0.0.0",
                                                                           7861)


def test_the_banner_for_a_stand_in_is_the_presets_own_sentence():
    stand_ins = [name for name, preset in PRESETS.items() if preset.stand_in]
    assert stand_ins, "an offline preset must say what it is"
    for name in stand_ins:
        assert app.stand_in_of(name).startswith(PRESETS[name].stand_in.rstrip("."))
    assert app.stand_in_of("e2b") is None and app.stand_in_of("org/custom") is None


@pytest.mark.parametrize("env,graphs", [({}, None), ({"SPACES_ZERO_GPU": "1"}, False)])
def test_the_engine_is_loaded_with_the_servers_options(monkeypatch, env, graphs):
    seen = {}
    monkeypatch.setattr(app, "load_engine", lambda model, drafter, **kw: seen.update(kw, model=model) or "engine")
    args = app.parse_args(["--engine", "transformers", "--dtype", "bf16"])
    settings = ServerSettings.from_env({**env, "PLAYGROUND_MAX_PROMPT_TOKENS": "2048"})
    assert app.engine_loader(args, settings, "tok")("e2b", None, print) == "engine"
    assert seen == {"model": "e2b", "token": "tok", "on_progress": print, "engine": "transformers", "dtype": "bf16",
                    "cuda_graphs": graphs, "max_prompt_tokens": 2048}
