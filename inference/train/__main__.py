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

from inference.mini import WEIGHTS_DIR, MiniShape, save_pair, sha256
from inference.tokenizer import build_tiny_tokenizer
from inference.train.config import TrainConfig
from inference.train.data import CORPUS, build_dataset
from inference.train.loop import train_drafter, train_target


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m inference.train", description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--limit", type=int, default=None, help="use only the first N transcripts (smoke runs)")
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


def main(argv=None) -> int:
    args = parse_args(argv)
    config = config_from(args)

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f} s] {line}", flush=True)

    start = time.perf_counter()
    tokenizer = build_tiny_tokenizer()
    data = build_dataset(tokenizer, args.corpus, limit=args.limit)
    data_s = time.perf_counter() - start
    log(f"data: {len(data.examples)} transcripts, {data.tokens} tokens after a {len(data.prefix)}-token shared "
        f"prefix, {data.loss_tokens} of them written by the model")
    target, vocab_ids, target_log = train_target(data, config, log)
    drafter, clusters, drafter_log = train_drafter(data, target, vocab_ids, config, log)
    meta = {
        "train_config": config.to_dict(),
        "corpus_sha256": sha256(args.corpus), "corpus_transcripts": len(data.examples),
        "corpus_tokens": data.tokens, "prefix_tokens": len(data.prefix), "written_tokens": data.loss_tokens,
        "limit": args.limit,
        "seconds": {"data": round(data_s, 1), "target": round(target_log.seconds, 1),
                    "drafter": round(drafter_log.seconds, 1), "total": round(time.perf_counter() - start, 1)},
        "target_curve": target_log.curve, "drafter_curve": drafter_log.curve,
        "machine": {"cpu_threads": config.threads, "torch": torch.__version__,
                    "transformers": transformers.__version__, "python": platform.python_version()},
    }
    manifest = save_pair(target, drafter, vocab_ids, clusters, config.shape, meta, out=args.out)
    log(f"wrote {args.out}: " + ", ".join(f"{name} {(args.out / name).stat().st_size} bytes"
                                          for name in manifest["files"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
