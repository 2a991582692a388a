"""Checks on a real checkpoint before any weights load, and its tokenizer with the chat template wherever it lives.

Every failure names its cause and the fix: a path that does not exist, a target that is not Gemma 4, a
drafter that is not a Gemma 4 MTP drafter (`Gemma4AssistantForCausalLM`) or was made for another target
width, a checkpoint without a chat template. Only config and tokenizer files are read here (kilobytes).
Knows nothing of generation, agents or Gradio.
"""

from __future__ import annotations

import json
import os

from protocol import ModelError

GEMMA4_TARGET_TYPES = ("gemma4", "gemma4_text")
GEMMA4_DRAFTER_TYPE = "gemma4_assistant"


def is_local(model_id: str) -> bool:
    return os.path.isdir(os.path.expanduser(model_id))


def check_exists(model_id: str, role: str) -> None:
    """Refuse an id that is neither an existing folder nor a possible Hub repo id ("the path does not exist")."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if is_local(model_id):
        return
    try:
        validate_repo_id(model_id)
    except HFValidationError:
        raise ModelError(f"The {role} path {model_id} does not exist (and it is not a Hub id of the form ORG/NAME): "
                         "check the path.") from None


def load_config(model_id: str, role: str, token: str | None):
    from transformers import AutoConfig

    check_exists(model_id, role)
    return AutoConfig.from_pretrained(os.path.expanduser(model_id), token=token)


def check_target(config, target_id: str) -> None:
    if config.model_type not in GEMMA4_TARGET_TYPES:
        raise ModelError(f"{target_id} is a {config.model_type} model ({', '.join(config.architectures or [])}), not "
                         "Gemma 4: this playground runs Gemma 4 targets (e.g. google/gemma-4-E2B-it).")


def check_drafter(config, drafter_id: str, target_config) -> None:
    if config.model_type != GEMMA4_DRAFTER_TYPE:
        kind = ", ".join(config.architectures or []) or config.model_type
        raise ModelError(f"The drafter {drafter_id} is a {kind}, not a Gemma 4 MTP drafter "
                         "(Gemma4AssistantForCausalLM): pass the target's -assistant checkpoint "
                         "(e.g. google/gemma-4-E2B-it-assistant), or no drafter.")
    width = target_config.get_text_config().hidden_size
    if config.backbone_hidden_size != width:
        raise ModelError(f"The drafter {drafter_id} was made for a target of width {config.backbone_hidden_size}, "
                         f"but this target's is {width}: pass the drafter made for this target.")


def load_tokenizer(target_id: str, token: str | None):
    """The target's tokenizer with its chat template, wherever the checkpoint keeps it.

    Tokenizers load `chat_template.jinja` and a template in `tokenizer_config.json` themselves; a template
    only in the processor's `chat_template.json` is read here, without `AutoProcessor` (which would need
    torchvision for Gemma 4's video processor).
    """
    from transformers import AutoTokenizer

    path = os.path.expanduser(target_id)
    tokenizer = AutoTokenizer.from_pretrained(path, token=token)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer
    template = _processor_template(path, token)
    if not template:
        raise ModelError(f"{target_id} ships no chat template (no chat_template.jinja, chat_template.json or "
                         "template in tokenizer_config.json): use an instruction-tuned (-it) checkpoint.")
    tokenizer.chat_template = template
    return tokenizer


def _processor_template(path: str, token: str | None) -> str | None:
    if os.path.isdir(path):
        file = os.path.join(path, "chat_template.json")
        if not os.path.exists(file):
            return None
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            file = hf_hub_download(path, "chat_template.json", token=token)
        except EntryNotFoundError:
            return None
    with open(file, encoding="utf-8") as f:
        return json.load(f).get("chat_template")
