"""Copy drills: seeded lists of `key: number` pairs written twice, the warm-up that teaches the target to copy.

Trained on the corpus alone, the narrow target never learned to copy a number it had read (held-out, teacher-
forced: 0.51 of digits right, 0.25-0.31 of digits whose source lay within 256 tokens); it wrote the numbers
it had seen most. On these drills the same shape jumps from ~0.65 to ~0.95 of the repeated tokens right once
attention heads form that find where the current token was seen and copy what followed: after ~330 steps from
seed 0, at step 680 from seed 1234 (a phase change whose timing varies by seed, hence TrainConfig's "until it
clicks" rule). From the clicked state, 200 corpus steps reach 0.70 held-out accuracy and 0.52 on copied tokens,
against 0.54 and 0.36 from scratch and 0.51 and 0.37 after 450 unclicked drill steps (docs/PERFORMANCE.md).
A row is `<bos> list \n list` with the loss on the repeat, in tokens the corpus uses.

Recall drills ask for more than a repeat: the same pairs, then `key is number` for every key in another order,
the loss on the numbers. Finding a number by its key rather than by what came just before it is what a
final answer does ("count: 25" in a tool's output, "There are 25 primes" in the answer). From scratch they
stayed at chance for 900 steps from seed 1234; after the repeat drills click they reached 0.87 in 500 steps.
"""

from __future__ import annotations

import random

import torch

from inference.train.data import Example

KEYS = ("count", "sum", "limit", "n", "age", "total", "x")  # words that label numbers in the corpus
RECALL_KEYS = KEYS + ("y", "i", "j", "size", "result", "value", "width", "height", "start", "end")
SEPARATORS = (", ", "\n")


def drill_text(rng: random.Random) -> str:
    """4-12 `key: number` pairs, numbers of 1-4 digits."""
    pairs = [f"{rng.choice(KEYS)}: {rng.randint(0, 10 ** rng.randint(1, 4) - 1)}" for _ in range(rng.randint(4, 12))]
    return rng.choice(SEPARATORS).join(pairs)


def drill_example(tokenizer, rng: random.Random) -> Example:
    """One drill row: the list, a newline, the list again; the loss covers the repeat, all of it copied."""
    once = tokenizer.encode(drill_text(rng), add_special_tokens=False)
    newline = tokenizer.encode("\n", add_special_tokens=False)
    ids = torch.tensor(once + newline + once)
    loss = torch.zeros(len(ids), dtype=torch.bool)
    loss[len(once) + len(newline):] = True
    return Example("drill", ids, loss, loss.clone())


def recall_text(rng: random.Random) -> tuple[str, list[tuple[int, int]]]:
    """4-8 `key: number` pairs with distinct keys, a newline, `key is number` for each key in a shuffled order;
    and the character spans of the asked numbers."""
    keys = rng.sample(RECALL_KEYS, rng.randint(4, 8))
    values = {key: rng.randint(0, 10 ** rng.randint(1, 4) - 1) for key in keys}
    text = rng.choice(SEPARATORS).join(f"{key}: {values[key]}" for key in keys) + "\n"
    spans = []
    rng.shuffle(keys)
    for i, key in enumerate(keys):
        text += (", " if i else "") + f"{key} is "
        spans.append((len(text), len(text) + len(str(values[key]))))
        text += str(values[key])
    return text, spans


def recall_example(tokenizer, rng: random.Random) -> Example:
    """One recall row; the loss covers the tokens of the asked numbers, all of them copied."""
    text, spans = recall_text(rng)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor(encoded["input_ids"])
    loss = torch.tensor([any(a <= start and end <= b for a, b in spans) for start, end in encoded["offset_mapping"]])
    return Example("recall", ids, loss, loss.clone())


DRILLS = {"repeat": drill_example, "recall": recall_example}  # the kinds TrainConfig.drill_kinds names


def drill_batches(tokenizer, steps: int, rows: int, seed: int, kind: str = "repeat") -> list[list[Example]]:
    """`steps` batches of `rows` drill rows of `kind` (a DRILLS key), the same for the same seed."""
    make = DRILLS[kind]
    rng = random.Random(seed)
    return [[make(tokenizer, rng) for _ in range(rows)] for _ in range(steps)]
