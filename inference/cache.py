"""The target's KV cache for our decode loop: preallocated buffers written at explicit positions. Nothing else.

One `[1, kv_heads, slots, head_dim]` key and value buffer per target layer that computes its own KV (the
KV-shared tail layers and the drafter read the last such layer of their type). Full-attention layers get one
slot per position up to `max_len`; sliding layers a ring of `ring_slots` (window + the most tokens one pass
writes), so their memory and attention cost stay flat however long the request. Each buffer records which
position every slot holds; the masks in `inference.masks` read that, so rolling back a rejected draft is
only moving the next write position: entries past it are invisible and overwritten by the next pass.

`StaticKV.update()` is the one method Transformers' Gemma 4 attention calls on `past_key_values`; the loop
calls `begin_pass(positions)` before each target pass. All device ops, no host syncs, fixed addresses: the
buffers can sit under a captured CUDA graph.
"""

from __future__ import annotations

import torch

from inference.masks import EMPTY, Masks, drafter_masks, target_masks

FULL, SLIDING = "full_attention", "sliding_attention"


def text_model(target):
    """The decoder stack of a Gemma 4 target, text-only (Gemma4ForCausalLM) or multimodal (its language model)."""
    return getattr(target.model, "language_model", target.model)


def own_kv_layers(target) -> list[int]:
    """Indices of the target's layers that compute and store their own KV (not KV-shared)."""
    return [i for i, layer in enumerate(text_model(target).layers) if not layer.self_attn.is_kv_shared_layer]


def ring_slots_for(window: int, max_len: int, max_pass_tokens: int) -> int:
    """Slots a sliding layer needs so that no pass overwrites a position a query of it may still read."""
    return min(max_len, window + max_pass_tokens)


class StaticKV:
    """Preallocated KV of one target for one request shape; duck-types the `update()` Transformers calls."""

    def __init__(self, target, max_len: int, *, max_pass_tokens: int, reader_window: int = 0) -> None:
        """reader_window: the drafter's sliding window, when it reads these buffers (the ring keeps enough for it)."""
        config = target.config.get_text_config()
        self.window = int(config.sliding_window)
        self.max_len = max_len
        self.max_pass_tokens = max_pass_tokens
        self.ring = ring_slots_for(max(self.window, reader_window), max_len, max_pass_tokens)
        weight = text_model(target).embed_tokens.weight
        device, dtype = weight.device, weight.dtype
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        self.layer_types: dict[int, str] = {}
        for i in own_kv_layers(target):
            attn = text_model(target).layers[i].self_attn
            kind = config.layer_types[i]
            kv_heads = attn.k_proj.out_features // attn.head_dim
            slots = self.ring if kind == SLIDING else max_len
            shape = (1, kv_heads, slots, attn.head_dim)
            self.keys[i] = torch.zeros(shape, device=device, dtype=dtype)
            self.values[i] = torch.zeros(shape, device=device, dtype=dtype)
            self.layer_types[i] = kind
        # The layers whose buffers KV-shared layers and the drafter read: the last own layer of each type.
        self.source = {kind: max(i for i, t in self.layer_types.items() if t == kind) for kind in set(self.layer_types.values())}
        self.slot_positions = {FULL: torch.full((max_len,), EMPTY, device=device, dtype=torch.long),
                               SLIDING: torch.full((self.ring,), EMPTY, device=device, dtype=torch.long)}
        self._slots = {FULL: None, SLIDING: None}

    @property
    def device(self) -> torch.device:
        return self.slot_positions[FULL].device

    def reset(self) -> None:
        """Forget every position (a new request); the buffers keep their addresses."""
        for positions in self.slot_positions.values():
            positions.fill_(EMPTY)

    def begin_pass(self, positions: torch.Tensor) -> None:
        """Route the next pass's KV writes to the slots of `positions` [q] and record what they will hold."""
        self._slots[FULL] = positions
        self._slots[SLIDING] = positions % self.ring
        for kind, slots in self._slots.items():
            self.slot_positions[kind].index_copy_(0, slots, positions)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        """Write this pass's keys/values [1, heads, q, dim] at the routed slots; return the whole buffers."""
        slots = self._slots[self.layer_types[layer_idx]]
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        keys.index_copy_(2, slots, key_states.to(keys.dtype))
        values.index_copy_(2, slots, value_states.to(values.dtype))
        return keys, values

    def shared_kv(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The buffers KV-shared layers and the drafter attend to, by layer type."""
        return {kind: (self.keys[i], self.values[i]) for kind, i in self.source.items()}

    def target_masks(self, query_positions: torch.Tensor) -> Masks:
        return target_masks(query_positions, self.slot_positions[FULL], self.slot_positions[SLIDING], self.window)

    def drafter_masks(self, query_positions: torch.Tensor, window: int) -> Masks:
        return drafter_masks(query_positions, self.slot_positions[FULL], self.slot_positions[SLIDING], window)
