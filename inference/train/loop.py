"""The training loops: AdamW with warm-up and cosine decay over length-bucketed batches, seeded throughout."""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from inference.tokenizer import SPECIAL_TOKEN_IDS, VOCAB_SIZE
from inference.train.config import TrainConfig
from inference.train.data import Dataset, Example, batches, collate, copy_mask
from inference.train.drill import drill_batches
from inference.train.target import build_compact_target, loss_and_hits

Log = Callable[[str], None]


@dataclass
class TrainLog:
    """What a loop did: steps, seconds, tokens, and the loss/accuracy curve."""

    steps: int = 0
    seconds: float = 0.0
    tokens: int = 0  # continuation tokens through the model (padding included)
    curve: list[dict] = field(default_factory=list)
    drill_curve: list[dict] = field(default_factory=list)  # the copy drills before the corpus (target only)


def split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, held-out) transcripts: a seeded `fraction` kept out to watch overfitting."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    cut = int(len(order) * fraction)
    return [examples[i] for i in order[cut:]], [examples[i] for i in order[:cut]]


def compact_index(vocab_ids: torch.Tensor) -> torch.Tensor:
    """Full-vocabulary id -> compact row (-1 where the id has no row)."""
    index = torch.full((VOCAB_SIZE,), -1, dtype=torch.long)
    index[vocab_ids] = torch.arange(len(vocab_ids))
    return index


def param_groups(model, embedding_scale: float, qk_norm_scale: float = 1.0) -> list[dict]:
    """The embeddings (the tied output head among them) and the final norm at `embedding_scale` times the
    learning rate; the q/k norms, whose weights alone set how sharp attention can get (Gemma 4 does not scale
    q.k), at `qk_norm_scale` times; everything else at 1x. Each group carries its `scale` for the schedule."""
    fast_names = ("model.embed_tokens.weight", "model.embed_tokens_per_layer.weight", "model.norm.weight")
    qk_names = ("self_attn.q_norm.weight", "self_attn.k_norm.weight")
    named = list(model.named_parameters())
    fast = [p for n, p in named if n in fast_names]
    qk = [p for n, p in named if n.endswith(qk_names)]
    rest = [p for n, p in named if n not in fast_names and not n.endswith(qk_names)]
    return [{"params": fast, "scale": embedding_scale}, {"params": qk, "scale": qk_norm_scale},
            {"params": rest, "scale": 1.0}]


def lr_at(step: int, total: int, config_lr: float, warmup: int, min_ratio: float) -> float:
    if step < warmup:
        return config_lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return config_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def autocast(enabled: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def target_step(model, optimizer, prefix: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, lr: float,
                config: TrainConfig, prefix_grad: bool = True, weights: torch.Tensor | None = None
                ) -> tuple[float, torch.Tensor]:
    """One optimizer step of the target at `lr` (times each group's scale): (loss, which written tokens the
    argmax got right). `weights` ([B, L]) weight each written token's loss; None: all alike."""
    for group in optimizer.param_groups:
        group["lr"] = group["scale"] * lr
    with autocast(config.bf16):
        loss, right = loss_and_hits(model, prefix, ids, mask, prefix_grad, weights)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach()), right


@dataclass
class Window:
    """Loss and accuracy over the steps since the last curve point, weighted by written tokens."""

    loss: float = 0.0
    n: int = 0
    hits: int = 0

    def add(self, loss: float, right: torch.Tensor) -> None:
        self.loss += loss * right.numel()
        self.n += right.numel()
        self.hits += int(right.sum())

    def take(self, step: int, seconds: float) -> dict:
        """The curve point for `step`, and a fresh window."""
        point = {"step": step, "seconds": round(seconds, 1), "loss": self.loss / self.n, "accuracy": self.hits / self.n}
        self.loss, self.n, self.hits = 0.0, 0, 0
        return point


def _line(point: dict) -> str:
    return " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in point.items())


def train_target(data: Dataset, config: TrainConfig, tokenizer, log: Log = print):
    """Train the compact target on `data` (made with `tokenizer`, which also writes the drills); returns (model,
    vocab_ids, TrainLog)."""
    torch.set_num_threads(config.threads)
    train, held = split(data.examples, config.eval_fraction, config.seed)
    per_epoch = len(batches(train, config.tokens_per_batch, config.seed, 0))
    total = math.ceil(config.target_epochs * per_epoch)
    kinds = config.drill_kinds.split("+")
    phases = ([drill_batches(tokenizer, config.drill_steps, config.drill_rows, config.seed + 2 * i, kind)
               for i, kind in enumerate(kinds)] if config.drill_steps else [])
    kept = (drill_batches(tokenizer, total // config.drill_every, config.drill_rows, config.seed + 1, kinds[-1])
            if config.drill_every else [])
    drilled = {int(i) for drills in phases + [kept] for batch in drills for e in batch for i in e.ids}
    vocab_ids = data.vocab_ids(extra=tuple(drilled))
    index = compact_index(vocab_ids)
    prefix = index[data.prefix]
    model = build_compact_target(config.shape, len(vocab_ids), config.seed, config.embedding_init_std,
                                 config.post_norm_init, config.qk_norm_init, config.previous_token_heads,
                                 config.attention_fp32)
    model.train()
    groups = param_groups(model, config.embedding_lr_scale, config.qk_norm_lr_scale)
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay)
    record = TrainLog()
    log(f"target: {len(vocab_ids)} vocabulary rows, {len(train)} transcripts ({sum(len(e.ids) for e in train)} "
        f"tokens, {sum(int(e.loss.sum()) for e in train)} written, {sum(int(e.copy.sum()) for e in train)} of them "
        f"copied) + {len(held)} held out; prefix {len(prefix)} "
        f"tokens; {per_epoch} steps per epoch, {total} steps" + (f", a drill step after every {config.drill_every}"
                                                                   if kept else ""))
    start = time.perf_counter()
    for kind, drills in zip(kinds, phases):
        drill(model, optimizer, drills, index, config, log, record, kind)
    corpus_start = time.perf_counter()
    step, epoch = 0, 0
    window, kept_window, kept_prefix = Window(), Window(), drill_prefix(index)
    while step < total:
        for batch in batches(train, config.tokens_per_batch, config.seed, epoch):
            if step >= total:
                break
            ids, mask = collate(batch, index)
            lr = lr_at(step, total, config.lr, config.warmup_steps, config.min_lr_ratio)
            weights = 1.0 + (config.copy_weight - 1.0) * copy_mask(batch) if config.copy_weight != 1.0 else None
            window.add(*target_step(model, optimizer, prefix, ids, mask, lr, config, config.prefix_grad, weights))
            step += 1
            record.tokens += ids.numel()
            if kept and step % config.drill_every == 0:  # kept holds total // drill_every batches
                drill_ids, drill_mask = collate(kept[step // config.drill_every - 1], index)
                kept_window.add(*target_step(model, optimizer, kept_prefix, drill_ids, drill_mask, lr, config))
            if step % 20 == 0 or step == total:
                point = window.take(step, time.perf_counter() - start)
                if kept_window.n:
                    point["drill_accuracy"] = kept_window.take(step, 0.0)["accuracy"]
                if step % config.eval_every == 0 or step == total:
                    point.update(zip(("held_loss", "held_accuracy", "held_copied_accuracy"),
                                     evaluate(model, prefix, held, index, config)))
                record.curve.append(point)
                log(_line(point) + f" tok/s {record.tokens / (time.perf_counter() - corpus_start):.0f}")
        epoch += 1
    record.steps, record.seconds = step, time.perf_counter() - start
    return model.eval(), vocab_ids, record


def drill_prefix(index: torch.Tensor) -> torch.Tensor:
    """What a drill row follows: `<bos>` alone (compact ids)."""
    return index[torch.tensor([SPECIAL_TOKEN_IDS["<bos>"]])]


def drill(model, optimizer, drills: list[list[Example]], index: torch.Tensor, config: TrainConfig, log: Log,
          record: TrainLog, kind: str = "repeat") -> None:
    """One phase of copy drills (inference/train/drill.py), one batch a step after `<bos>` alone, at the full
    learning rate after the warm-up, until a 20-step window gets `drill_click_accuracy` of the copied tokens
    right (copying has clicked) or the drills run out; their loss and accuracy go to `record.drill_curve`."""
    prefix = drill_prefix(index)
    start = time.perf_counter()
    window = Window()
    for step, batch in enumerate(drills, 1):
        ids, mask = collate(batch, index)
        lr = lr_at(step - 1, len(drills), config.lr, config.warmup_steps, 1.0)
        window.add(*target_step(model, optimizer, prefix, ids, mask, lr, config))
        if step % 20 == 0 or step == len(drills):
            point = window.take(step, time.perf_counter() - start) | {"kind": kind}
            record.drill_curve.append(point)
            log("drill " + _line(point))
            if point["accuracy"] >= config.drill_click_accuracy:
                log(f"drill ({kind}): clicked at step {step}")
                return


@torch.no_grad()
def evaluate(model, prefix: torch.Tensor, examples: list[Example], index: torch.Tensor,
             config: TrainConfig) -> tuple[float, float, float]:
    """(cross-entropy, argmax accuracy, argmax accuracy on the copied tokens) over the written tokens of
    `examples`, teacher-forced. Copying (the task's numbers, a run's output) is what the small pair learns last."""
    if not examples:
        return float("nan"), float("nan"), float("nan")
    was_training = model.training
    model.eval()
    total, n, hits, copies, copy_hits = 0.0, 0, 0, 0, 0
    for batch in batches(examples, config.tokens_per_batch, config.seed, 0):
        ids, mask = collate(batch, index)
        with autocast(config.bf16):
            loss, right = loss_and_hits(model, prefix, ids, mask)
        copy = copy_mask(batch)[:, 1:][mask[:, 1:]]
        total, n, hits = total + float(loss) * right.numel(), n + right.numel(), hits + int(right.sum())
        copies, copy_hits = copies + int(copy.sum()), copy_hits + int(right[copy].sum())
    model.train(was_training)
    return total / n, hits / n, copy_hits / copies if copies else float("nan")


def train_drafter(data: Dataset, target, vocab_ids: torch.Tensor, config: TrainConfig, log: Log = print):
    """Train the compact drafter against the frozen compact target; returns (drafter, clusters, TrainLog).

    The TrainLog's curve carries per-step acceptance (drafts generation would accept / drafts tried), on the
    training batches and on the held-out transcripts.
    """
    from inference.train.drafter import build_compact_drafter, cluster_tokens, target_view, unrolled_loss

    torch.set_num_threads(config.threads)
    index = compact_index(vocab_ids)
    prefix = index[data.prefix]
    train, held = split(data.examples, config.eval_fraction, config.seed)
    shape = config.shape
    per = VOCAB_SIZE // shape.num_centroids
    clusters = cluster_tokens(target.model.embed_tokens.weight, config.clusters, per, config.seed)
    drafter = build_compact_drafter(shape, len(vocab_ids), config.seed, config.attention_fp32)
    drafter.train()
    target.eval()
    params = list(drafter.parameters())  # its embedding is its lm_head (tied): inputs come from the target
    head = drafter.lm_head.weight
    groups = [{"params": [head], "scale": config.embedding_lr_scale},
              {"params": [p for p in params if p is not head], "scale": 1.0}]
    optimizer = torch.optim.AdamW(groups, lr=config.drafter_lr, betas=(0.9, 0.95), weight_decay=0.0)
    per_epoch = len(batches(train, config.drafter_tokens_per_batch, config.seed + 7, 0))
    total = max(1, math.ceil(config.drafter_epochs * per_epoch))
    record = TrainLog()
    log(f"drafter: {per_epoch} steps per epoch, {total} steps, k={config.draft_steps}, "
        f"{int(clusters.max()) + 1} clusters hold the {len(vocab_ids)} trained tokens")
    start = time.perf_counter()
    step, epoch = 0, 0
    window = {"loss": 0.0, "n": 0, "tried": [0] * config.draft_steps, "accepted": [0] * config.draft_steps}
    while step < total:
        for batch in batches(train, config.drafter_tokens_per_batch, config.seed + 7, epoch):
            if step >= total:
                break
            ids, written = collate(batch, index)
            for group in optimizer.param_groups:
                group["lr"] = group["scale"] * lr_at(step, total, config.drafter_lr, config.warmup_steps,
                                                     config.min_lr_ratio)
            with autocast(config.bf16):
                view = target_view(target, prefix, ids, written)
                loss, stats = unrolled_loss(drafter, target, len(prefix), ids, written, view, clusters,
                                            config.draft_steps)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            record.tokens += ids.numel()
            window["loss"] += float(loss.detach())
            window["n"] += 1
            for key in ("tried", "accepted"):
                window[key] = [a + b for a, b in zip(window[key], stats[key])]
            if step % 20 == 0 or step == total:
                elapsed = time.perf_counter() - start
                point = {"step": step, "seconds": round(elapsed, 1), "loss": window["loss"] / window["n"],
                         "accepted_by_position": _rates(window)}
                if step % 100 == 0 or step == total:
                    point["held_accepted_by_position"] = evaluate_drafter(drafter, target, prefix, held, index,
                                                                          clusters, config)
                record.curve.append(point)
                log(f"step {step} seconds {elapsed:.0f} loss {point['loss']:.4f} accepted/position "
                    f"{point['accepted_by_position']} held {point.get('held_accepted_by_position', '')} "
                    f"tok/s {record.tokens / elapsed:.0f}")
                window = {"loss": 0.0, "n": 0, "tried": [0] * config.draft_steps,
                          "accepted": [0] * config.draft_steps}
        epoch += 1
    record.steps, record.seconds = step, time.perf_counter() - start
    return drafter.eval(), clusters, record


def _rates(stats: dict) -> list[float]:
    return [round(a / t, 3) if t else 0.0 for a, t in zip(stats["accepted"], stats["tried"])]


@torch.no_grad()
def evaluate_drafter(drafter, target, prefix, examples, index, clusters, config: TrainConfig) -> list[float]:
    """Per draft position, the share of drafts generation would accept on `examples` (teacher-forced)."""
    from inference.train.drafter import target_view, unrolled_loss

    if not examples:
        return []
    was_training = drafter.training
    drafter.eval()
    totals = {"tried": [0] * config.draft_steps, "accepted": [0] * config.draft_steps}
    for batch in batches(examples, config.drafter_tokens_per_batch, config.seed, 0):
        ids, written = collate(batch, index)
        with autocast(config.bf16):
            view = target_view(target, prefix, ids, written)
            _, stats = unrolled_loss(drafter, target, len(prefix), ids, written, view, clusters, config.draft_steps)
        for key in totals:
            totals[key] = [a + b for a, b in zip(totals[key], stats[key])]
    drafter.train(was_training)
    return _rates(totals)
