"""`python -m inference.train`: train the mini target, then its drafter, and write inference/weights/mini/.

    python -m inference.train                      # the shipped weights, from the committed corpus and seed
    python -m inference.train --out /tmp/mini --target-epochs 0.02 --drafter-epochs 0.02 --limit 40   # a smoke run

Prints progress as it goes; the manifest it writes records the config, the corpus's sha256, the seconds each
phase took and the training curves.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

import torch
import transformers

from inference.mini import WEIGHTS_DIR, MiniShape, load_merges, save_pair, sha256
from inference.tokenizer import build_tiny_tokenizer, build_tokenizer
from inference.train.config import TrainConfig
from inference.train.data import CORPUS, build_dataset, corpus_texts
from inference.train.merges import learn_merges, number_merges, piece_counts
from inference.train.loop import train_drafter, train_target


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m inference.train", description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--limit", type=int, default=None, help="use only the first N transcripts (smoke runs)")
    p.add_argument("--target-from", type=Path, default=None,
                   help="a pair folder whose target to keep (bf16 as shipped): train only a new drafter against it")
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        if field.name == "shape":
            continue
        value = getattr(defaults, field.name)
        kind = (lambda s: s.lower() in ("1", "true", "yes")) if isinstance(value, bool) else type(value)
        p.add_argument("--" + field.name.replace("_", "-"), type=kind, default=value)
    for field in dataclasses.fields(MiniShape):
        p.add_argument("--shape-" + field.name.replace("_", "-"), type=int, default=getattr(defaults.shape, field.name))
    return p.parse_args(argv)


def config_from(args: argparse.Namespace) -> TrainConfig:
    shape = MiniShape(**{f.name: getattr(args, "shape_" + f.name) for f in dataclasses.fields(MiniShape)})
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "shape"}
    return TrainConfig(shape=shape, **values)


def load_compact_target(folder: Path, config: TrainConfig):
    """The compact target of a written pair, in fp32, with that pair's training record."""
    from safetensors.torch import load_file

    from inference.mini import TARGET_FILE, read_manifest
    from inference.train.loop import TrainLog
    from inference.train.target import build_compact_target

    manifest = read_manifest(folder)
    if MiniShape(**manifest["shape"]) != config.shape:
        raise SystemExit(f"error: {folder} holds a target of another shape than this config's")
    state = load_file(str(folder / TARGET_FILE))
    vocab_ids = state.pop("vocab_ids").long()
    target = build_compact_target(config.shape, len(vocab_ids), config.seed, attention_fp32=config.attention_fp32)
    missing, unexpected = target.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise SystemExit(f"error: {folder}'s target does not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    old = manifest["seconds"]
    record = TrainLog(steps=manifest["target_curve"][-1]["step"], seconds=old["target"], curve=manifest["target_curve"],
                      drill_curve=manifest.get("drill_curve", []))
    return target.eval(), vocab_ids, record


def target_from_note(folder: Path | None) -> str | None:
    """How the target was made when it was not trained in this run."""
    if folder is None:
        return None
    return "kept from an earlier run of this config (its target_curve and seconds are that run's)"


def main(argv=None) -> int:
    args = parse_args(argv)
    config = config_from(args)

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f} s] {line}", flush=True)

    start = time.perf_counter()
    tokenizer, merges = build_tiny_tokenizer(), None
    if args.target_from is not None:
        merges = load_merges(args.target_from)  # the kept target reads its own tokens
        tokenizer = build_tokenizer(merges)
    elif config.tokenizer_merges:
        learned = learn_merges(piece_counts(tokenizer, corpus_texts(tokenizer, args.corpus, args.limit)),
                               config.tokenizer_merges)
        merges = learned + number_merges(config.number_digits)
        tokenizer = build_tokenizer(merges)
        log(f"tokenizer: {len(learned)} merge rules learned from the corpus, {len(merges) - len(learned)} for "
            f"numbers of up to {config.number_digits} digits")
    data = build_dataset(tokenizer, args.corpus, limit=args.limit)
    data_s = time.perf_counter() - start
    log(f"data: {len(data.examples)} transcripts, {data.tokens} tokens after a {len(data.prefix)}-token shared "
        f"prefix, {data.loss_tokens} of them written by the model")
    if args.target_from is not None:
        target, vocab_ids, target_log = load_compact_target(args.target_from, config)
        log(f"target: kept from {args.target_from} ({len(vocab_ids)} vocabulary rows), not retrained")
    else:
        target, vocab_ids, target_log = train_target(data, config, tokenizer, log)
    drafter, clusters, drafter_log = train_drafter(data, target, vocab_ids, config, log)
    meta = {
        "train_config": config.to_dict(),
        "corpus_sha256": sha256(args.corpus), "corpus_transcripts": len(data.examples),
        "corpus_tokens": data.tokens, "prefix_tokens": len(data.prefix), "written_tokens": data.loss_tokens,
        "limit": args.limit, "target_from": target_from_note(args.target_from),
        "seconds": {"data": round(data_s, 1), "target": round(target_log.seconds, 1),
                    "drafter": round(drafter_log.seconds, 1), "total": round(time.perf_counter() - start, 1)},
        "drill_curve": target_log.drill_curve, "target_curve": target_log.curve, "drafter_curve": drafter_log.curve,
        "machine": {"cpu_threads": config.threads, "torch": torch.__version__,
                    "transformers": transformers.__version__, "python": platform.python_version()},
    }
    manifest = save_pair(target, drafter, vocab_ids, clusters, config.shape, meta, out=args.out, merges=merges)
    log(f"wrote {args.out}: " + ", ".join(f"{name} {(args.out / name).stat().st_size} bytes"
                                          for name in manifest["files"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
