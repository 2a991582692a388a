"""The offline `mini` pair: a small Gemma 4 target and MTP drafter trained here, and their compact weight files.

Same classes and layer patterns as `google/gemma-4-E2B-it` and its `-assistant` drafter: 35 layers in E2B's
rhythm (four sliding, one full), per-layer embeddings, the last 20 layers KV-shared; a drafter whose four layers
all read the target's KV, with ordered embeddings and a centroid head. Narrow, and trained by
`python -m inference.train` on generated agent transcripts (agents/corpus), so it calls tools in Gemma 4's
format. Not Gemma 4's weights.

Weights ship compact (inference/weights/mini/): only the vocabulary rows the corpus uses are stored; every other
row of the 262144 is zero, so those tokens score 0 and stay below every trained token. A pair trained with its
own tokenizer merge rules ships them beside the weights (merges.txt, checksummed too). Knows nothing of agents.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import Gemma4AssistantConfig, Gemma4AssistantForCausalLM, Gemma4ForCausalLM, Gemma4TextConfig

from inference.tokenizer import (SPECIAL_TOKEN_IDS, STOP_TOKEN_IDS, VOCAB_SIZE, build_tokenizer, read_merges,
                                  write_merges)

MINI_TARGET_ID = "mini/gemma-4-agent-stand-in-it"
MINI_DRAFTER_ID = "mini/gemma-4-agent-stand-in-it-assistant"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "mini"
MANIFEST = "manifest.json"
TARGET_FILE, DRAFTER_FILE = "target.safetensors", "drafter.safetensors"
MERGES_FILE = "merges.txt"  # the pair's own tokenizer merge rules, when it was trained with learned ones
DRAFT_TOKENS = 4  # the draft length shipped in the drafter's generation_config (see docs/PERFORMANCE.md)
# Rows stored compactly: (state-dict key, whether it is the drafter's). Everything else is stored whole.
ROW_KEYS = ("model.embed_tokens.weight", "model.embed_tokens_per_layer.weight")
DRAFTER_ROW_KEYS = ("model.embed_tokens.weight", "lm_head.weight")
_ROPE = {
    "full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0, "rope_type": "proportional"},
    "sliding_attention": {"rope_theta": 10_000.0, "rope_type": "default"},
}


@dataclass(frozen=True)
class MiniShape:
    """The pair's shape. E2B: 35 layers, width 1536, 8 heads of 256 (512 on full layers), 20 KV-shared layers."""

    layers: int = 35
    hidden: int = 128
    heads: int = 2
    head_dim: int = 32
    intermediate: int = 128  # doubled in the KV-shared layers, as E2B's use_double_wide_mlp
    per_layer: int = 16  # per-layer embedding width (E2B: 256)
    kv_shared: int = 20
    sliding_window: int = 512
    drafter_hidden: int = 64
    drafter_heads: int = 2
    drafter_intermediate: int = 256
    num_centroids: int = 2048
    centroid_top_k: int = 32

    def __post_init__(self) -> None:
        if self.layers % 5 or not 0 < self.kv_shared < self.layers - 5:
            raise ValueError("layers must be a multiple of 5 (four sliding, one full) with a KV-shared tail that "
                             "leaves at least one sliding and one full layer before it")
        if VOCAB_SIZE % self.num_centroids:
            raise ValueError(f"num_centroids must divide the vocabulary ({VOCAB_SIZE})")


def layer_types(layers: int) -> list[str]:
    return ["full_attention" if (i + 1) % 5 == 0 else "sliding_attention" for i in range(layers)]


def _shared(shape: MiniShape, vocab_size: int) -> dict:
    """What the drafter must share with the target: it attends to the target's KV cache."""
    return dict(vocab_size=vocab_size, head_dim=shape.head_dim, global_head_dim=2 * shape.head_dim,
                num_key_value_heads=1, sliding_window=shape.sliding_window, max_position_embeddings=131_072,
                rope_parameters=_ROPE, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                pad_token_id=SPECIAL_TOKEN_IDS["<pad>"], bos_token_id=SPECIAL_TOKEN_IDS["<bos>"],
                eos_token_id=SPECIAL_TOKEN_IDS["<eos>"], tie_word_embeddings=True)


def target_config(shape: MiniShape, vocab_size: int = VOCAB_SIZE) -> Gemma4TextConfig:
    return Gemma4TextConfig(
        hidden_size=shape.hidden, intermediate_size=shape.intermediate, num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads, layer_types=layer_types(shape.layers), num_kv_shared_layers=shape.kv_shared,
        hidden_size_per_layer_input=shape.per_layer, vocab_size_per_layer_input=vocab_size, use_double_wide_mlp=True,
        final_logit_softcapping=30.0, **_shared(shape, vocab_size))


def drafter_config(shape: MiniShape, vocab_size: int = VOCAB_SIZE) -> Gemma4AssistantConfig:
    text = Gemma4TextConfig(
        hidden_size=shape.drafter_hidden, intermediate_size=shape.drafter_intermediate, num_hidden_layers=4,
        num_attention_heads=shape.drafter_heads, layer_types=["sliding_attention"] * 3 + ["full_attention"],
        num_kv_shared_layers=4, hidden_size_per_layer_input=0, vocab_size_per_layer_input=0,
        use_double_wide_mlp=False, final_logit_softcapping=None, **_shared(shape, vocab_size))
    return Gemma4AssistantConfig(text_config=text, backbone_hidden_size=shape.hidden, use_ordered_embeddings=True,
                                 num_centroids=shape.num_centroids, centroid_intermediate_top_k=shape.centroid_top_k)


# ---- the compact weight files ----

def token_ordering(vocab_ids: torch.Tensor, clusters: torch.Tensor, num_centroids: int) -> torch.Tensor:
    """The drafter's token ordering: cluster c owns slots [c*per, (c+1)*per); its trained tokens come first,
    the rest of every cluster is filled with untrained ids in ascending order. A permutation of the vocabulary."""
    per = VOCAB_SIZE // num_centroids
    ordering = torch.full((num_centroids, per), -1, dtype=torch.long)
    fill = torch.zeros(num_centroids, dtype=torch.long)
    for token, cluster in zip(vocab_ids.tolist(), clusters.tolist()):
        if fill[cluster] >= per:
            raise ValueError(f"cluster {cluster} holds more than {per} tokens")
        ordering[cluster, fill[cluster]] = token
        fill[cluster] += 1
    used = torch.zeros(VOCAB_SIZE, dtype=torch.bool)
    used[vocab_ids] = True
    rest = iter(torch.nonzero(~used).flatten().tolist())
    flat = ordering.flatten()
    for slot in torch.nonzero(flat < 0).flatten().tolist():
        flat[slot] = next(rest)
    return flat


def save_pair(target: Gemma4ForCausalLM, drafter: Gemma4AssistantForCausalLM, vocab_ids: torch.Tensor,
              clusters: torch.Tensor, shape: MiniShape, meta: dict, out: Path = WEIGHTS_DIR,
              dtype: torch.dtype = torch.bfloat16, merges: list[tuple[str, str]] | None = None) -> dict:
    """Write the pair's compact files and a manifest with their sha256; return the manifest.

    `target` and `drafter` are the compact models training makes: their vocabulary-sized tensors hold, in
    order, the rows of `vocab_ids` (the drafter's may hold more rows after those, which are dropped). `merges`:
    the tokenizer merge rules the pair was trained with, when not the stand-in tokenizer's (written as merges.txt).
    """
    out.mkdir(parents=True, exist_ok=True)
    vocab_ids = vocab_ids.to(torch.long)
    files = {TARGET_FILE: _compact(target.state_dict(), ROW_KEYS, vocab_ids, dtype, skip=("lm_head.weight",)),
             DRAFTER_FILE: _compact(drafter.state_dict(), DRAFTER_ROW_KEYS, vocab_ids, dtype,
                                    skip=("lm_head.weight", "masked_embedding.token_ordering"))}
    files[TARGET_FILE]["vocab_ids"] = vocab_ids.to(torch.int32)
    files[DRAFTER_FILE]["clusters"] = clusters.to(torch.int32)
    manifest = {"shape": asdict(shape), "dtype": str(dtype).removeprefix("torch."), "vocab_rows": len(vocab_ids),
                "draft_tokens": DRAFT_TOKENS, "files": {}, **meta}
    for name, tensors in files.items():
        save_file(tensors, str(out / name))
        manifest["files"][name] = sha256(out / name)
    (out / MERGES_FILE).unlink(missing_ok=True)
    if merges is not None:
        write_merges(merges, out / MERGES_FILE)
        manifest["files"][MERGES_FILE] = sha256(out / MERGES_FILE)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def _compact(state: dict, row_keys: tuple[str, ...], vocab_ids: torch.Tensor, dtype: torch.dtype,
             skip: tuple[str, ...]) -> dict[str, torch.Tensor]:
    tensors = {}
    for key, value in state.items():
        if key in skip:
            continue  # tied to the embedding, or rebuilt from the clusters
        value = value[: len(vocab_ids)] if key in row_keys else value
        tensors[key] = value.to(dtype).contiguous() if value.is_floating_point() else value.contiguous()
    return tensors


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_manifest(folder: Path = WEIGHTS_DIR) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the mini weights are not in this checkout. Train them with "
                                "`python -m inference.train` or use --model tiny.")
    return json.loads(path.read_text())


def load_merges(folder: Path = WEIGHTS_DIR) -> list[tuple[str, str]] | None:
    """The merge rules the pair in `folder` was trained with, or None where it reads the stand-in tokenizer's."""
    return read_merges(folder / MERGES_FILE) if MERGES_FILE in read_manifest(folder)["files"] else None


def load_mini_tokenizer(folder: Path = WEIGHTS_DIR):
    """The pair's tokenizer: the stand-in's layout, special ids and template with the pair's own merge rules
    (load_mini_pair checks their sha256 with the weights')."""
    return build_tokenizer(load_merges(folder))


def load_mini_pair(dtype: torch.dtype = torch.float32, folder: Path = WEIGHTS_DIR, *, verify: bool = True
                   ) -> tuple[Gemma4ForCausalLM, Gemma4AssistantForCausalLM]:
    """The full-vocabulary target and drafter from the compact files (checked against the manifest)."""
    manifest = read_manifest(folder)
    if verify:
        for name, digest in manifest["files"].items():
            if sha256(folder / name) != digest:
                raise ValueError(f"{folder / name} does not match its sha256 in {MANIFEST}: the file is damaged or "
                                 "was changed without retraining; restore it from git or retrain.")
    shape = MiniShape(**manifest["shape"])
    target_state, drafter_state = load_file(str(folder / TARGET_FILE)), load_file(str(folder / DRAFTER_FILE))
    vocab_ids = target_state.pop("vocab_ids").long()
    clusters = drafter_state.pop("clusters").long()
    target = _empty(Gemma4ForCausalLM, target_config(shape))
    drafter = _empty(Gemma4AssistantForCausalLM, drafter_config(shape))
    _fill(target, target_state, ROW_KEYS, vocab_ids)
    _fill(drafter, drafter_state, DRAFTER_ROW_KEYS, vocab_ids)
    drafter.masked_embedding.token_ordering.copy_(token_ordering(vocab_ids, clusters, shape.num_centroids))
    target.config.name_or_path, drafter.config.name_or_path = MINI_TARGET_ID, MINI_DRAFTER_ID
    for model in (target, drafter):  # as the real generation_config.json files: stop at <eos>, <turn|>, <|tool_response>
        model.generation_config.eos_token_id = list(STOP_TOKEN_IDS)
    drafter.generation_config.num_assistant_tokens = manifest.get("draft_tokens", DRAFT_TOKENS)
    drafter.generation_config.num_assistant_tokens_schedule = "constant"
    return target.to(dtype).eval(), drafter.to(dtype).eval()


def _empty(cls, config):
    """The model with every weight zero: no time spent drawing random numbers that are overwritten anyway."""
    from transformers import initialization

    with initialization.no_init_weights():
        model = cls(config)
    model.tie_weights()  # skipped with the initialisation: the head and the embedding are one tensor
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


@torch.no_grad()
def _fill(model: torch.nn.Module, state: dict[str, torch.Tensor], row_keys: tuple[str, ...],
          vocab_ids: torch.Tensor) -> None:
    own = model.state_dict()
    expected = {k for k in own if k not in ("lm_head.weight", "masked_embedding.token_ordering")}
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"mini weights do not fit the model: missing {missing[:5]}, unexpected {extra[:5]}")
    for key, value in state.items():
        if key in row_keys:
            own[key][vocab_ids] = value.to(own[key].dtype)
        else:
            own[key].copy_(value)
