"""Training data: corpus transcripts rendered through our Gemma 4 chat template, tokenized, with a loss mask.

Reads the corpus file that `python -m agents.corpus` writes (gzip'd JSON lines: a header with the tool
declarations, then transcripts in the chat-template message format); never imports agents. Each transcript
renders to the exact text the engine builds at every step: the system turn with the real tool declarations is
one shared prefix, and the loss covers only what the model itself wrote (tool calls up to the
<|tool_response> stop token, final answers up to <turn|>), never deliberate mistakes.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from inference.tokenizer import SPECIAL_TOKEN_IDS, STOP_TOKEN_IDS

CORPUS = Path(__file__).resolve().parents[2] / "agents" / "corpus" / "data" / "transcripts.jsonl.gz"
CORPUS_FORMAT = 1
# Text tokens every model needs rows for, even where the corpus lacks one (the image/audio ids are not text).
ALWAYS_IDS = tuple(sorted(i for name, i in SPECIAL_TOKEN_IDS.items() if i < 1000))
SPECIAL_IDS = frozenset(SPECIAL_TOKEN_IDS.values())


@dataclass(frozen=True)
class Example:
    """One transcript: its tokens after the shared prefix, and which of them are loss targets."""

    family: str
    ids: torch.Tensor  # [n] token ids (full vocabulary) after the prefix
    loss: torch.Tensor  # [n] bool: this token is something the model wrote (predicted from the one before)
    copy: torch.Tensor  # [n] bool: a written token copied from what the model read (see `copied`)


@dataclass(frozen=True)
class Dataset:
    prefix: torch.Tensor  # [P] the shared system turn (system prompt and tool declarations)
    examples: list[Example]
    tools: list[dict]

    @property
    def tokens(self) -> int:
        return sum(len(e.ids) for e in self.examples)

    @property
    def loss_tokens(self) -> int:
        return sum(int(e.loss.sum()) for e in self.examples)

    def vocab_ids(self, extra: tuple[int, ...] = ()) -> torch.Tensor:
        """Sorted ids of every token the data uses, plus the special text tokens and `extra`: the rows that get
        trained."""
        used = set(self.prefix.tolist()) | set(ALWAYS_IDS) | set(extra)
        for e in self.examples:
            used.update(e.ids.tolist())
        return torch.tensor(sorted(used), dtype=torch.long)


def read_corpus(path: Path = CORPUS) -> tuple[dict, list[dict]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; make it with `python -m agents.corpus`.")
    lines = gzip.open(path, "rt", encoding="utf-8").read().splitlines()
    header = json.loads(lines[0])
    if header.get("format") != CORPUS_FORMAT:
        raise ValueError(f"{path} has corpus format {header.get('format')!r}; this trainer reads {CORPUS_FORMAT}.")
    return header, [json.loads(line) for line in lines[1:]]


def render(tokenizer, messages: list[dict], tools: list[dict], *, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                         add_generation_prompt=generation_prompt)


class Renderer:
    """render() for conversations that share one system message and tool list, ~8x faster: the tool
    declarations (most of the template's work) are rendered once and spliced into each system turn."""

    def __init__(self, tokenizer, system: dict, tools: list[dict]) -> None:
        self.tokenizer, self.system, self.tools = tokenizer, system, tools
        bare = render(tokenizer, [system], [])
        full = render(tokenizer, [system], tools)
        end = "<turn|>\n"
        self.at = len(bare) - len(end)
        if not (bare.endswith(end) and full.startswith(bare[:self.at]) and full.endswith(end)):
            raise ValueError("the chat template's system turn does not have the expected layout")
        self.declarations = full[self.at:len(full) - len(end)]

    def __call__(self, messages: list[dict], *, generation_prompt: bool = False) -> str:
        if not messages or messages[0] != self.system:
            return render(self.tokenizer, messages, self.tools, generation_prompt=generation_prompt)
        bare = render(self.tokenizer, messages, [], generation_prompt=generation_prompt)
        return bare[:self.at] + self.declarations + bare[self.at:]


def written_spans(tokenizer, messages: list[dict], tools: list[dict], skip: set[int],
                  renderer: Renderer | None = None) -> tuple[str, list[tuple]]:
    """(full text, [(start, end) character spans the model wrote]) for one transcript.

    Each assistant message's span runs from the end of the prompt the engine would render before it to the end
    of that message: through <|tool_response> after calls, through <turn|> after a final answer.
    """
    draw = renderer or (lambda m, generation_prompt=False: render(tokenizer, m, tools,
                                                                   generation_prompt=generation_prompt))
    full = draw(messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or i in skip:
            continue
        prompt = draw(messages[:i], generation_prompt=True)
        upto = draw(messages[: i + 1])
        if upto.endswith("<turn|>\n"):
            upto = upto[:-1]  # generation stops at <turn|>; the newline is the template's
        if not (upto.startswith(prompt) and full.startswith(upto) and len(upto) > len(prompt)):
            raise ValueError(f"message {i}: the rendered prompt is not a prefix of the rendered conversation; "
                             "the chat template and the corpus disagree")
        spans.append((len(prompt), len(upto)))
    return full, spans


def encode(tokenizer, text: str, spans: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids of `text` and a mask of the tokens that lie inside `spans` (none may straddle an edge)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor(enc["input_ids"], dtype=torch.long)
    offsets = torch.tensor(enc["offset_mapping"], dtype=torch.long).reshape(-1, 2)
    a, b = offsets[:, 0], offsets[:, 1]
    loss = torch.zeros(len(ids), dtype=torch.bool)
    for start, end in spans:
        loss |= (a >= start) & (b <= end)
        straddle = ((a < start) & (b > start)) | ((a < end) & (b > end))
        if straddle.any():
            j = int(straddle.nonzero()[0])
            raise ValueError(f"token {j} ({text[a[j]:b[j]]!r}) straddles the edge of a span the model wrote")
    return ids, loss


def copied(ids: torch.Tensor, written: torch.Tensor, common: set[tuple[int, int]], digits: set[int]
           ) -> torch.Tensor:
    """[n] bool: the written tokens the model must copy rather than compose: every digit (or number token), and
    every token that continues a token pair it read earlier in the same transcript (in the task or a tool's
    output), leaving out pairs of the shared system turn (`common`) and the special tokens. The task's numbers
    and strings, the values a run printed: what the trained pair gets wrong most. Training reports held-out
    accuracy on them."""
    seen: set[tuple[int, int]] = set()
    out = torch.zeros(len(ids), dtype=torch.bool)
    tokens, marks = ids.tolist(), written.tolist()
    for j in range(1, len(tokens)):
        pair = (tokens[j - 1], tokens[j])
        if not marks[j]:
            seen.add(pair)
        elif tokens[j] in digits or (pair in seen and pair not in common and tokens[j] not in SPECIAL_IDS):
            out[j] = True
    return out


def corpus_texts(tokenizer, path: Path = CORPUS, limit: int | None = None) -> list[str]:
    """The corpus as the model reads it: the shared system turn once, then each transcript's text after it."""
    header, transcripts = read_corpus(path)
    transcripts = transcripts[:limit] if limit else transcripts
    renderer = Renderer(tokenizer, transcripts[0]["messages"][0], header["tools"])
    prefix = render(tokenizer, [transcripts[0]["messages"][0]], header["tools"])
    return [prefix] + [renderer(t["messages"]).removeprefix(prefix) for t in transcripts]


def build_dataset(tokenizer, path: Path = CORPUS, limit: int | None = None) -> Dataset:
    """Every transcript of the corpus as token ids after the shared system-turn prefix."""
    header, transcripts = read_corpus(path)
    tools = header["tools"]
    transcripts = transcripts[:limit] if limit else transcripts
    system = transcripts[0]["messages"][0]
    renderer = Renderer(tokenizer, system, tools)
    if renderer(transcripts[0]["messages"]) != render(tokenizer, transcripts[0]["messages"], tools):
        raise ValueError("splicing the tool declarations changed the rendering")
    prefix_text = render(tokenizer, [system], tools)
    prefix = tokenizer(prefix_text, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    tokens = prefix.tolist()
    common = set(zip(tokens, tokens[1:]))
    digits = {i for token, i in tokenizer.get_vocab().items() if token.isascii() and token.isdigit()}  # numbers too
    examples = []
    for t in transcripts:
        if t["messages"][0] != system:
            raise ValueError(f"{t['key']}: its system prompt differs from the first transcript's")
        text, spans = written_spans(tokenizer, t["messages"], tools, set(t.get("no_loss", ())), renderer)
        ids, loss = encode(tokenizer, text, spans)
        if not torch.equal(ids[: len(prefix)], prefix) or loss[: len(prefix)].any():
            raise ValueError(f"{t['key']}: does not start with the shared system turn")
        ends = ids[1:][loss[1:]]
        if not any(int(s) in ends.tolist() for s in STOP_TOKEN_IDS):
            raise ValueError(f"{t['key']}: no stop token among the written tokens")
        ids, loss = ids[len(prefix):], loss[len(prefix):]
        examples.append(Example(t["family"], ids, loss, copied(ids, loss, common, digits)))
    return Dataset(prefix=prefix, examples=examples, tools=tools)


def batches(examples: list[Example], tokens_per_batch: int, seed: int, epoch: int) -> list[list[Example]]:
    """Length-bucketed batches of about `tokens_per_batch` padded tokens, in a seeded random order."""
    rng = random.Random(seed * 1000 + epoch)
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].ids), rng.random()))
    out, current, longest = [], [], 0
    for i in order:
        n = len(examples[i].ids)
        if current and max(longest, n) * (len(current) + 1) > tokens_per_batch:
            out.append(current)
            current, longest = [], 0
        current.append(examples[i])
        longest = max(longest, n)
    if current:
        out.append(current)
    rng.shuffle(out)
    return out


def collate(batch: list[Example], to_compact: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, L] compact ids, right-padded with <pad>; [B, L] loss mask) of a batch."""
    longest = max(len(e.ids) for e in batch)
    ids = torch.zeros(len(batch), longest, dtype=torch.long)
    loss = torch.zeros(len(batch), longest, dtype=torch.bool)
    for row, e in enumerate(batch):
        ids[row, : len(e.ids)] = to_compact[e.ids]
        loss[row, : len(e.ids)] = e.loss
    return ids, loss


def copy_mask(batch: list[Example]) -> torch.Tensor:
    """[B, L] bool matching collate(batch): the copied tokens (see `copied`)."""
    out = torch.zeros(len(batch), max(len(e.ids) for e in batch), dtype=torch.bool)
    for row, e in enumerate(batch):
        out[row, : len(e.ids)] = e.copy
    return out
