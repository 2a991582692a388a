"""Tests for our Gemma 4 chat template: hand-written expected prompts, and identical text to Google's templates."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from inference.tokenizer import SPECIAL_TOKEN_IDS, build_tiny_tokenizer

SHARED_GEMMA4 = Path(__file__).resolve().parents[2] / ".." / "shared" / "gemma4"
SMALL_TEMPLATE = SHARED_GEMMA4 / "chat_template.jinja"
LARGE_TEMPLATE = SHARED_GEMMA4 / "chat_template.large-26B-A4B-31B.jinja"
Q = '<|"|>'


def _call(name, arguments, call_id=None):
    call = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        call["id"] = call_id
    return call


def _tool(name, description, parameters=None, **extra):
    function = {"name": name, "description": description, **extra}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


RUN_PYTHON = _tool(
    "run_python",
    "Run Python code in the sandbox.",
    {
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "Source to run."},
            "timeout_s": {"type": "number", "description": "Wall-clock limit.", "nullable": True},
        },
        "required": ["code"],
    },
)
NESTED_TOOL = _tool(
    "edit_files",
    "Apply edits to files.",
    {
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["append", "replace"], "description": "How to edit."},
            "level": {"type": "integer", "enum": [1, 2, 3]},
            "edits": {
                "type": "array",
                "description": "The edits.",
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string"},
                        "lines": {"type": "array", "items": {"type": "integer"}},
                    },
                    "required": ["path"],
                },
            },
            "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
            "options": {
                "type": "object",
                "description": "Extra options.",
                "properties": {
                    "dry_run": {"type": "boolean"},
                    "encoding": {"type": "string", "enum": ["utf-8", "latin-1"]},
                },
                "required": ["dry_run"],
            },
            "free_form": {"type": "object"},
            "Tags": {"type": "array", "items": {"type": ["string", "null"], "description": "A tag."}},
        },
        "required": ["edits", "mode"],
    },
    response={"type": "object", "description": "What changed."},
)
NO_PARAMS_TOOL = _tool("list_files", "List the working directory.")

USER = {"role": "user", "content": "Fix the failing test."}
CALL = {
    "role": "assistant",
    "reasoning": "I should run the tests first.",
    "tool_calls": [_call("run_python", {"code": "import subprocess\nprint('{ok}')", "timeout_s": 5}, "c1")],
}
RESULT = {"role": "tool", "tool_call_id": "c1", "content": "1 failed, 3 passed"}
ANSWER = {"role": "assistant", "reasoning": "Done now.", "content": "All tests pass."}

# Each case: (id, messages, tools). Each is rendered with thinking on/off and with/without a generation prompt.
CONVERSATIONS = [
    ("plain", [{"role": "user", "content": "Hello"}], None),
    ("system_user", [{"role": "system", "content": "  Be brief.\n"}, {"role": "user", "content": " Hi \n"}], None),
    ("developer_user", [{"role": "developer", "content": "Rules."}, {"role": "user", "content": "Go"}], None),
    (
        "list_contents",
        [
            {"role": "system", "content": [{"type": "text", "text": "Part one."}, {"type": "text", "text": "Two"}]},
            {
                "role": "user",
                "content": [{"type": "text", "text": " Look: "}, {"type": "image"}, {"type": "text", "text": "ok"}],
            },
        ],
        None,
    ),
    (
        "multi_turn",
        [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3+3?"},
        ],
        None,
    ),
    ("tools_declared", [USER], [RUN_PYTHON, NESTED_TOOL, NO_PARAMS_TOOL]),
    ("tools_with_system", [{"role": "system", "content": "You code."}, USER], [RUN_PYTHON]),
    ("one_call_result_answer", [USER, CALL, RESULT, ANSWER], [RUN_PYTHON]),
    ("one_call_result_open", [USER, CALL, RESULT], [RUN_PYTHON]),
    ("one_call_no_result", [USER, CALL], [RUN_PYTHON]),
    (
        "several_calls_results",
        [
            USER,
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    _call("run_python", {"code": "print(1)"}, "a"),
                    _call("list_files", {}, "b"),
                ],
            },
            {"role": "tool", "tool_call_id": "b", "content": "main.py\ntest_main.py"},
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "assistant", "content": "Found them."},
            {"role": "user", "content": "Thanks"},
        ],
        [RUN_PYTHON, NO_PARAMS_TOOL],
    ),
    (
        "tricky_result_text",
        [
            USER,
            {"role": "assistant", "tool_calls": [_call("run_python", {"code": 'x = {"a": [1, 2]}\nprint(x)'}, "t")]},
            {
                "role": "tool",
                "tool_call_id": "t",
                "content": 'Traceback:\n  File "<stdin>", line 1\n    {"a": [1, 2]}, C:\\dir\t\\n 日本 🎉\n}',
            },
        ],
        [RUN_PYTHON],
    ),
    (
        "mapping_results_legacy",
        [
            USER,
            {
                "role": "assistant",
                "tool_calls": [_call("run_python", {"code": "1"})],
                "tool_responses": [
                    {
                        "name": "run_python",
                        "response": {"stdout": "1\n", "exit_code": 0, "Extra": [1, {"z": None, "a": True}]},
                    },
                    {"response": "plain"},
                ],
            },
        ],
        [RUN_PYTHON],
    ),
    (
        "tool_content_parts",
        [
            USER,
            {"role": "assistant", "tool_calls": [_call("run_python", {"code": "plot()"}, "p")]},
            {
                "role": "tool",
                "tool_call_id": "p",
                "content": [
                    {"type": "text", "text": "saved "},
                    {"type": "image"},
                    {"type": "text", "text": "plot.png"},
                ],
            },
            {"role": "assistant", "content": "Here it is."},
        ],
        [RUN_PYTHON],
    ),
    (
        "rich_call_arguments",
        [
            USER,
            {
                "role": "assistant",
                "tool_calls": [
                    _call(
                        "edit_files",
                        {
                            "mode": "replace",
                            "edits": [{"path": "a.py", "lines": [1, 2]}, {"path": "b.py", "Lines": []}],
                            "options": {"dry_run": False, "ratio": 0.5, "note": None, "Upper": "é"},
                            "count": -3,
                        },
                        "e",
                    ),
                    _call("list_files", None, "f"),
                ],
            },
            {"role": "tool", "tool_call_id": "e", "content": "ok"},
            {"role": "tool", "tool_call_id": "f", "content": ""},
        ],
        [NESTED_TOOL, NO_PARAMS_TOOL],
    ),
    (
        "past_reasoning_multi_turn",
        [
            {"role": "user", "content": "First task"},
            {"role": "assistant", "reasoning": "old thought", "content": "First done."},
            {"role": "user", "content": "Second task"},
            {"role": "assistant", "reasoning_content": "new thought", "tool_calls": [_call("list_files", {}, "l")]},
            {"role": "tool", "tool_call_id": "l", "content": "x.py"},
            {
                "role": "assistant",
                "reasoning": "final thought",
                "content": "<|channel>thought\nleak<channel|>Second done.",
            },
        ],
        [NO_PARAMS_TOOL],
    ),
    (
        "tool_names_without_ids",
        [
            USER,
            {"role": "assistant", "tool_calls": [_call("run_python", {"code": "1"}), _call("list_files", {})]},
            {"role": "tool", "name": "run_python", "content": "1"},
            {"role": "tool", "content": "files"},
        ],
        [RUN_PYTHON, NO_PARAMS_TOOL],
    ),
    (
        "consecutive_assistant_messages",
        [USER, {"role": "assistant", "content": "Part one."}, {"role": "assistant", "content": "Part two."}],
        None,
    ),
    ("orphan_tool_message", [USER, {"role": "tool", "content": "stray"}], None),
]

RENDER_FLAGS = [
    {"enable_thinking": False, "add_generation_prompt": False},
    {"enable_thinking": False, "add_generation_prompt": True},
    {"enable_thinking": True, "add_generation_prompt": False},
    {"enable_thinking": True, "add_generation_prompt": True},
]


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


def _ours(tok, messages, tools=None, **kwargs):
    return tok.apply_chat_template(messages, tools=tools, tokenize=False, **kwargs)


def _real(tok, template_path, messages, tools=None, **kwargs):
    if not template_path.is_file():
        pytest.skip(f"reference template {template_path.name} not found (../shared absent)")
    text = template_path.read_text(encoding="utf-8")
    return tok.apply_chat_template(messages, tools=tools, tokenize=False, chat_template=text, **kwargs)


# ----- the format on its own (no ../shared needed) -----


def test_plain_chat_renders_gemma4_turns(tok):
    prompt = _ours(tok, [{"role": "user", "content": " Hello \n"}], add_generation_prompt=True)
    assert prompt == "<bos><|turn>user\nHello<turn|>\n<|turn>model\n"


def test_thinking_switch_goes_first_in_the_system_turn(tok):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    prompt = _ours(tok, messages, add_generation_prompt=True, enable_thinking=True)
    assert prompt == "<bos><|turn>system\n<|think|>\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n"


def test_tool_declaration_spells_out_the_schema(tok):
    prompt = _ours(tok, [{"role": "user", "content": "Hi"}], tools=[RUN_PYTHON])
    declaration = (
        f"<|tool>declaration:run_python{{description:{Q}Run Python code in the sandbox.{Q},parameters:{{"
        f"properties:{{code:{{description:{Q}Source to run.{Q},type:{Q}STRING{Q}}},"
        f"timeout_s:{{description:{Q}Wall-clock limit.{Q},nullable:true,type:{Q}NUMBER{Q}}}}},"
        f"required:[{Q}code{Q}],type:{Q}OBJECT{Q}}}}}<tool|>"
    )
    assert prompt == f"<bos><|turn>system\n{declaration}<turn|>\n<|turn>user\nHi<turn|>\n"


def test_nested_schema_keeps_enums_items_and_required(tok):
    prompt = _ours(tok, [USER], tools=[NESTED_TOOL])
    assert f"mode:{{description:{Q}How to edit.{Q},enum:[{Q}append{Q},{Q}replace{Q}],type:{Q}STRING{Q}}}" in prompt
    assert (
        f"edits:{{description:{Q}The edits.{Q},items:{{properties:{{lines:{{items:{{type:{Q}INTEGER{Q}}},"
        f"type:{Q}ARRAY{Q}}},path:{{type:{Q}STRING{Q}}}}},required:[{Q}path{Q}],type:{Q}OBJECT{Q}}},type:{Q}ARRAY{Q}}}"
    ) in prompt
    # An array's own `items` schema below `items` is written as a plain value, keys in <|"|>.
    assert f"matrix:{{items:{{items:{{{Q}type{Q}:{Q}number{Q}}},type:{Q}ARRAY{Q}}},type:{Q}ARRAY{Q}}}" in prompt
    assert f"Tags:{{items:{{description:{Q}A tag.{Q},type:[{Q}STRING{Q},{Q}NULL{Q}]}},type:{Q}ARRAY{Q}}}" in prompt
    assert f"level:{{type:{Q}INTEGER{Q}}}" in prompt  # Gemma 4 shows enums for strings only
    assert f"free_form:{{properties:{{}},type:{Q}OBJECT{Q}}}" in prompt
    assert f",response:{{description:{Q}What changed.{Q},type:{Q}OBJECT{Q}}}}}<tool|>" in prompt


def test_call_then_result_leaves_the_model_turn_open(tok):
    messages = [
        {"role": "user", "content": "ls"},
        {"role": "assistant", "tool_calls": [_call("run", {"n": 2, "cmd": "ls -a"}, "x")]},
        {"role": "tool", "tool_call_id": "x", "content": 'a "b"\n{c}'},
    ]
    expected = (
        "<bos><|turn>user\nls<turn|>\n<|turn>model\n"
        f"<|tool_call>call:run{{cmd:{Q}ls -a{Q},n:2}}<tool_call|>"
        f'<|tool_response>response:run{{value:{Q}a "b"\n{{c}}{Q}}}<tool_response|>'
    )
    assert _ours(tok, messages, add_generation_prompt=True) == expected
    thinking_prompt = _ours(tok, messages, add_generation_prompt=True, enable_thinking=True)
    assert thinking_prompt.endswith("<tool_response|><|channel>thought\n")


def test_answer_after_result_continues_the_same_turn(tok):
    prompt = _ours(tok, [USER, CALL, RESULT, ANSWER])
    assert prompt.count("<|turn>model\n") == 1
    assert prompt.endswith(
        f"1 failed, 3 passed{Q}}}<tool_response|><|channel>thought\nDone now.\n<channel|>All tests pass.<turn|>\n"
    )


def test_call_without_result_ends_in_a_tool_response_opener(tok):
    prompt = _ours(tok, [USER, CALL], add_generation_prompt=True)
    assert prompt.endswith("<tool_call|><|tool_response>")


def test_mapping_tool_content_renders_sorted_bare_keys(tok):
    # Our extension: Google's template fails on a mapping `content`; ours renders it like `tool_responses`.
    messages = [
        USER,
        {"role": "assistant", "tool_calls": [_call("run_python", {"code": "1"}, "m")]},
        {"role": "tool", "tool_call_id": "m", "content": {"stdout": "1", "exit_code": 0, "Err": None}},
    ]
    prompt = _ours(tok, messages)
    assert prompt.endswith(
        f"<|tool_response>response:run_python{{Err:null,exit_code:0,stdout:{Q}1{Q}}}<tool_response|>"
    )


def test_old_reasoning_is_dropped_and_new_reasoning_kept(tok):
    _, messages, tools = next(case for case in CONVERSATIONS if case[0] == "past_reasoning_multi_turn")
    prompt = _ours(tok, messages, tools=tools)
    assert "old thought" not in prompt
    assert "<|channel>thought\nnew thought\n<channel|>" in prompt
    assert "leak" not in prompt and prompt.endswith("Second done.<turn|>\n")


def test_empty_thought_block_is_opt_in(tok):
    messages = [{"role": "user", "content": "Hi"}]
    assert _ours(tok, messages, add_generation_prompt=True).endswith("<|turn>model\n")
    large = _ours(tok, messages, add_generation_prompt=True, empty_thought_block=True)
    assert large.endswith("<|turn>model\n<|channel>thought\n<channel|>")
    thinking = _ours(tok, messages, add_generation_prompt=True, empty_thought_block=True, enable_thinking=True)
    assert thinking.endswith("<|turn>model\n")


def test_string_arguments_are_refused(tok):
    messages = [USER, {"role": "assistant", "tool_calls": [_call("run_python", '{"code": "1"}', "s")]}]
    with pytest.raises(jinja2.TemplateError, match="mapping"):
        _ours(tok, messages)


def test_rendered_prompt_tokenizes_with_single_special_ids(tok):
    text = _ours(tok, [USER, CALL, RESULT, ANSWER], tools=[RUN_PYTHON], enable_thinking=True)
    ids = tok.apply_chat_template([USER, CALL, RESULT, ANSWER], tools=[RUN_PYTHON], enable_thinking=True)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    assert ids[0] == SPECIAL_TOKEN_IDS["<bos>"] and ids.count(SPECIAL_TOKEN_IDS["<bos>"]) == 1
    assert tok.decode(ids, skip_special_tokens=False) == text
    for token in ["<|turn>", "<|tool>", "<|tool_call>", "<|tool_response>", "<|channel>", "<|think|>"]:
        assert ids.count(SPECIAL_TOKEN_IDS[token]) == text.count(token) > 0


# ----- identical text to Google's templates (needs ../shared/gemma4) -----


@pytest.mark.parametrize(
    "flags", RENDER_FLAGS, ids=lambda f: f"think={f['enable_thinking']}-gen={f['add_generation_prompt']}"
)
@pytest.mark.parametrize("case_id,messages,tools", CONVERSATIONS, ids=[case[0] for case in CONVERSATIONS])
def test_matches_google_small_model_template(tok, case_id, messages, tools, flags):
    assert _ours(tok, messages, tools=tools, **flags) == _real(tok, SMALL_TEMPLATE, messages, tools=tools, **flags)


@pytest.mark.parametrize(
    "flags", RENDER_FLAGS, ids=lambda f: f"think={f['enable_thinking']}-gen={f['add_generation_prompt']}"
)
@pytest.mark.parametrize("case_id,messages,tools", CONVERSATIONS, ids=[case[0] for case in CONVERSATIONS])
def test_matches_google_large_model_template_with_empty_thought_block(tok, case_id, messages, tools, flags):
    ours = _ours(tok, messages, tools=tools, empty_thought_block=True, **flags)
    assert ours == _real(tok, LARGE_TEMPLATE, messages, tools=tools, **flags)


@pytest.mark.parametrize("case_id", ["one_call_result_answer", "past_reasoning_multi_turn", "several_calls_results"])
def test_matches_google_template_when_preserving_thinking(tok, case_id):
    _, messages, tools = next(case for case in CONVERSATIONS if case[0] == case_id)
    flags = {"enable_thinking": True, "preserve_thinking": True, "add_generation_prompt": True}
    assert _ours(tok, messages, tools=tools, **flags) == _real(tok, SMALL_TEMPLATE, messages, tools=tools, **flags)


# ----- seeded random conversations: same text as Google's template -----

_PIECES = ["a", "B", " sp ", "x\ny", '"q"', "{b}", "", "日本", "\t", "<|channel>t<channel|>z"]


def _random_value(rng, depth=0):
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    if kind == 7:
        return {rng.choice(_PIECES) or "k": _random_value(rng, depth + 1) for _ in range(rng.randrange(3))}
    return [None, True, False, rng.randint(-5, 5), rng.choice(_PIECES) + rng.choice(_PIECES), 1.5][kind]


def _random_schema(rng, depth=0):
    kind = rng.choice(["string", "integer", "boolean", "STRING", None] + (["array", "object"] if depth < 2 else []))
    schema = {"type": kind} if kind else {}
    for key, chance in (("description", 0.5), ("enum", 0.3), ("nullable", 0.2)):
        if rng.random() < chance:
            schema[key] = {"description": rng.choice(_PIECES), "enum": ["x", "y z"], "nullable": rng.random() < 0.5}[
                key
            ]
    if kind == "array" and rng.random() < 0.8:
        schema["items"] = _random_schema(rng, depth + 1)
    if kind == "object" and rng.random() < 0.7:
        schema["properties"] = {rng.choice("abC"): _random_schema(rng, depth + 1) for _ in range(rng.randrange(3))}
        schema["required"] = ["a"] if rng.random() < 0.5 else []
    return schema


def _random_conversation(rng):
    messages = [{"role": "system", "content": "s"}] if rng.random() < 0.4 else []
    for turn in range(rng.randrange(1, 6)):
        role = rng.choice(["user", "assistant", "assistant", "tool", "system"])
        message = {"role": role, "content": rng.choice(_PIECES) + rng.choice(["", "u"])}
        if role == "assistant" and rng.random() < 0.4:
            message[rng.choice(["reasoning", "reasoning_content"])] = rng.choice(_PIECES) or "r"
        messages.append(message)
        if role == "assistant" and rng.random() < 0.5:
            calls = [
                _call(f"t{rng.randrange(3)}", rng.choice([None, {"a": _random_value(rng)}]), f"i{turn}{n}")
                for n in range(rng.randrange(1, 3))
            ]
            message["tool_calls"] = calls
            for call in calls[: rng.randrange(len(calls) + 1)]:
                messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": rng.choice([rng.choice(_PIECES), 5, None])}
                )
    tools = [
        _tool(f"t{n}", rng.choice(_PIECES), {"type": "object", "properties": {rng.choice("abC"): _random_schema(rng)}})
        for n in range(rng.randrange(3))
    ]
    return messages, tools or None


@pytest.mark.parametrize("seed", range(4))
def test_matches_google_template_on_random_conversations(tok, seed):
    import random

    rng = random.Random(seed)
    for _ in range(40):
        messages, tools = _random_conversation(rng)
        flags = {
            "enable_thinking": rng.random() < 0.5,
            "add_generation_prompt": rng.random() < 0.5,
            "preserve_thinking": rng.random() < 0.3,
        }
        assert _ours(tok, messages, tools=tools, **flags) == _real(
            tok, SMALL_TEMPLATE, messages, tools=tools, **flags
        ), (messages, tools, flags)
        ours_large = _ours(tok, messages, tools=tools, empty_thought_block=True, **flags)
        assert ours_large == _real(tok, LARGE_TEMPLATE, messages, tools=tools, **flags), (messages, tools, flags)
