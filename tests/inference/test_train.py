"""The mini pair's training: exact fast forward, the drafter step, the data's loss mask, a smoke run end to end."""

from __future__ import annotations

import gzip
import json
import random
import re

import pytest
import torch

from inference.drafter import greedy_draft
from inference.loop import target_logits
from inference.mini import (MERGES_FILE, MiniShape, load_merges, load_mini_pair, load_mini_tokenizer, read_manifest,
                            save_pair)
from inference.tokenizer import STOP_TOKEN_IDS, build_tiny_tokenizer
from inference.train.data import CORPUS, Example, build_dataset, copied, encode, written_spans
from inference.train.drafter import build_compact_drafter, centroid_argmax, cluster_tokens
from inference.train.drill import KEYS, drill_batches, drill_example, recall_example
from inference.train.fast import scored_hidden
from inference.train.target import build_compact_target, logits_at, loss_and_hits

SMALL = MiniShape(layers=10, kv_shared=4, sliding_window=16, hidden=32, intermediate=64, drafter_hidden=32,
                  drafter_intermediate=64)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


@pytest.mark.parametrize("fp32", [False, True])
def test_fast_training_forward_equals_the_models_own_forward(fp32):
    model = build_compact_target(SMALL, 300, seed=0, attention_fp32=fp32).eval()
    assert model.config._attn_implementation.endswith("_fp32") == fp32
    prefix = torch.randint(5, 300, (40,))
    ids = torch.randint(5, 300, (3, 200))
    scored = torch.rand(3, 200) < 0.4
    with torch.no_grad():
        fast, _, _ = scored_hidden(model, prefix, ids, scored)
        model.config._attn_implementation = "eager"
        reference = torch.cat([model.model(input_ids=torch.cat([prefix, ids[b]])[None]).last_hidden_state[0, 40:][scored[b]]
                               for b in range(3)])
    assert fast.shape == reference.shape
    torch.testing.assert_close(fast, reference, atol=2e-3, rtol=0)  # sdpa vs eager kernels differ this much


def test_fp32_attention_attends_bf16_inputs_in_float32_and_answers_in_bf16(monkeypatch):
    """attention_fp32: the kernel sees float32 query/key/value, the output comes back in bf16, and it is the
    same attention (masked, within bf16 rounding of a float64 reference, no further off than the bf16 kernel)."""
    from inference.train import fast

    torch.manual_seed(0)
    q, k, v = (3 * torch.randn(2, 2, 300, 32).bfloat16() for _ in range(3))
    mask = (torch.arange(300)[None] <= torch.arange(300)[:, None])[None, None]
    exact = torch.nn.functional.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=mask)
    exact = exact.transpose(1, 2)
    seen, kernel = [], fast.F.scaled_dot_product_attention
    monkeypatch.setattr(fast.F, "scaled_dot_product_attention",
                        lambda q, *a, **kw: seen.append(q.dtype) or kernel(q, *a, **kw))
    errors = {}
    for name, attention in (("bf16", fast.blocked_attention), ("fp32", fast.blocked_attention_fp32)):
        seen.clear()
        out, _ = attention(None, q, k, v, mask)
        assert set(seen) == {torch.bfloat16 if name == "bf16" else torch.float32}
        assert out.dtype == torch.bfloat16 and out.shape == (2, 300, 2, 32)
        errors[name] = float((out.double() - exact).abs().mean())
    assert errors["fp32"] <= errors["bf16"] < 0.01


@pytest.mark.parametrize("heads", [0, 1, 2])
def test_previous_token_heads_attend_one_and_two_tokens_back_at_initialisation(heads):
    """Layer 0's first heads put their weight 1 (head 0) and 2 (head 1) tokens back, whatever the tokens are;
    without the option neither head does. Read from the attention weights the eager kernel returns."""
    shape = MiniShape(layers=10, kv_shared=4, sliding_window=64, hidden=32, intermediate=64, heads=2)
    model = build_compact_target(shape, 300, seed=0, embedding_std=0.1, qk_norm_init=True,
                                 previous_token_heads=heads).eval()
    model.config._attn_implementation = "eager"
    ids = torch.randint(5, 300, (2, 120))
    with torch.no_grad():
        weights = model.model(input_ids=ids, output_attentions=True).attentions[0]  # [batch, heads, query, key]
    at = torch.arange(20, 120)
    back = {d: weights[:, :, at, at - d].amin(dim=(0, 2)) for d in (1, 2)}  # per head, the least over positions
    for head in range(2):
        wanted = head + 1 if head < heads else None
        for d in (1, 2):
            if d == wanted:
                assert back[d][head] > 0.99, (head, d, back[d])
            else:
                assert back[d][head] < 0.5, (head, d, back[d])
    with pytest.raises(ValueError, match="1 or 2"):
        build_compact_target(shape, 300, seed=0, previous_token_heads=3)


def test_without_prefix_gradient_the_loss_is_the_same_and_only_the_prefix_stops_learning():
    """prefix_grad=False: same loss; rows read only in the shared prefix get no gradient, the rest still do.
    (The per-layer embedding is an input only; the tied embedding is also the output head, which every row feeds.)"""
    model = build_compact_target(SMALL, 300, seed=0)
    prefix, ids = torch.randint(5, 150, (40,)), torch.randint(150, 300, (2, 60))
    mask = torch.rand(2, 60) < 0.5
    seen = {}
    for prefix_grad in (True, False):
        model.zero_grad()
        loss, _ = loss_and_hits(model, prefix, ids, mask, prefix_grad)
        loss.backward()
        seen[prefix_grad] = float(loss.detach()), model.model.embed_tokens_per_layer.weight.grad.abs().sum(1)
    assert seen[True][0] == pytest.approx(seen[False][0], abs=1e-6)
    in_prefix = torch.zeros(300, dtype=torch.bool)
    in_prefix[prefix] = True
    in_ids = torch.zeros(300, dtype=torch.bool)
    in_ids[ids[:, :30].flatten()] = True  # read before a scored position
    assert (seen[True][1][in_prefix] > 0).all() and (seen[False][1][in_prefix] == 0).all()
    assert (seen[False][1][in_ids] > 0).all()


def test_a_copy_drill_writes_its_list_twice_and_the_loss_covers_the_repeat_only(tokenizer):
    rng = random.Random(0)
    pair = re.compile(rf"(?:{'|'.join(KEYS)}): \d{{1,4}}")
    for _ in range(30):
        e = drill_example(tokenizer, rng)
        start = int(torch.nonzero(e.loss)[0])
        first, repeat = tokenizer.decode(e.ids[:start]), tokenizer.decode(e.ids[start:])
        assert first == repeat + "\n" and e.loss[start:].all() and torch.equal(e.copy, e.loss)
        assert all(pair.fullmatch(p) for p in re.split(r", |\n", repeat))
    same, other = drill_batches(tokenizer, 3, 4, seed=5), drill_batches(tokenizer, 3, 4, seed=6)
    assert [[e.ids.tolist() for e in b] for b in same] == [[e.ids.tolist() for e in b]
                                                            for b in drill_batches(tokenizer, 3, 4, seed=5)]
    assert [[e.ids.tolist() for e in b] for b in same] != [[e.ids.tolist() for e in b] for b in other]


def test_a_recall_drill_asks_each_key_once_and_the_loss_covers_exactly_the_numbers_asked(tokenizer):
    rng = random.Random(1)
    for _ in range(30):
        e = recall_example(tokenizer, rng)
        text = tokenizer.decode(e.ids)
        listed, asked = text.rsplit("\n", 1)
        values = dict(re.fullmatch(r"(\w+): (\d+)", p).groups() for p in re.split(r", |\n", listed))
        questions = [re.fullmatch(r"(\w+) is (\d+)", q).groups() for q in asked.split(", ")]
        assert sorted(k for k, _ in questions) == sorted(values) and len(values) == len(questions)
        assert all(values[k] == v for k, v in questions)  # each answer is the number listed under its key
        assert tokenizer.decode(e.ids[e.loss]) == "".join(v for _, v in questions) and torch.equal(e.copy, e.loss)
    assert drill_batches(tokenizer, 2, 3, seed=5, kind="recall")[0][0].family == "recall"


def test_the_shipped_pair_computes_what_the_compact_training_pair_computed(tmp_path):
    """Export maps every trained row and cluster: the full-vocabulary target scores and the generation-time
    drafter head (inference.drafter.greedy_draft over the token ordering) equal the compact ones."""
    vocab_ids = torch.tensor(sorted({0, 1, 2, 3, 4, 46, 47, 48, 49, 50, 51, 52, 98, 100, 101, 105, 106}
                                    | set(range(256, 256 + 183))))
    target = build_compact_target(SMALL, len(vocab_ids), seed=0).eval()
    drafter = build_compact_drafter(SMALL, len(vocab_ids), seed=0).eval()
    clusters = cluster_tokens(target.model.embed_tokens.weight, 8, 128, seed=0)
    save_pair(target, drafter, vocab_ids, clusters, SMALL, {}, out=tmp_path, dtype=torch.float32)
    full_target, full_drafter = load_mini_pair(folder=tmp_path)
    hidden = torch.randn(1, 5, SMALL.hidden)
    with torch.no_grad():
        compact = logits_at(target, hidden)[..., :-1]
        shipped = target_logits(full_target, hidden)
        torch.testing.assert_close(shipped[..., vocab_ids], compact)
        assert shipped[..., 5].abs().max() == 0 and shipped[..., 200_000].abs().max() == 0  # inert rows
        rows = drafter.lm_head.weight[:len(vocab_ids)]
        head = 3 * rows[torch.randint(0, len(vocab_ids), (1, 8))]  # near trained rows: mostly trained drafts
        for c in range(8):
            drafter.masked_embedding.centroids.weight[c] = rows[clusters == c].sum(0)
        full_drafter.masked_embedding.centroids.weight.copy_(drafter.masked_embedding.centroids.weight)
        mine = centroid_argmax(head @ drafter.lm_head.weight[:len(vocab_ids)].T, drafter.masked_embedding.centroids(head),
                               clusters, SMALL.centroid_top_k)
        theirs = greedy_draft(full_drafter, head)
    trained = mine >= 0
    assert int(trained.sum()) >= 4
    assert torch.equal(vocab_ids[mine[trained]], theirs[trained])
    # where training says "no trained draft", generation drafts a row that scores 0: untrained (or <pad>'s zero row)
    live = vocab_ids[full_drafter.lm_head.weight[vocab_ids].abs().sum(-1) > 0]
    assert not torch.isin(theirs[~trained], live).any()


def test_the_loss_covers_exactly_what_the_model_wrote(tokenizer):
    messages = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Say hi in hi.py"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "write_file", "arguments": {"path": "hi.py"}}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "write_file", "content": "Created hi.py (1 line)."},
        {"role": "assistant", "content": "Done: hi.py prints hi."},
    ]
    text, spans = written_spans(tokenizer, messages, [], skip=set())
    written = [text[a:b] for a, b in spans]
    assert written == ['<|tool_call>call:write_file{path:<|"|>hi.py<|"|>}<tool_call|><|tool_response>',
                       "Done: hi.py prints hi.<turn|>"]
    assert "Created hi.py" not in "".join(written)
    _, skipped = written_spans(tokenizer, messages, [], skip={2})
    assert [text[a:b] for a, b in skipped] == written[1:]


COPY_CASES = [
    # (what the model read, what it wrote, the written pieces marked as copied)
    ("Run it for n=15.", "for n=15: done", ["=", "1", "5"]),  # the pair (" n", "=") is the system turn's
    ("Count the word zorba.", "zorba appears", ["or", "b", "a"]),  # the pairs after its first piece
    ("nothing shared", "x + y", []),
    ("", "range(1, 27)", ["1", "2", "7"]),  # every written digit, read before or not
]


@pytest.mark.parametrize("read,wrote,marked", COPY_CASES)
def test_copied_marks_what_the_model_copies_from_what_it_read(tokenizer, read, wrote, marked):
    system = "system: x = n<turn|>"
    text = system + read + "<|turn>model\n" + wrote + "<turn|>"
    start = len(text) - len(wrote) - len("<turn|>")
    ids, loss = encode(tokenizer, text, [(start, len(text))])
    prefix = tokenizer(system, add_special_tokens=False)["input_ids"]
    common = set(zip(prefix, prefix[1:]))
    digits = {tokenizer.convert_tokens_to_ids(d) for d in "0123456789"}
    copy = copied(ids, loss, common, digits)
    assert not (copy & ~loss).any()  # only written tokens
    assert [tokenizer.decode(i) for i in ids[copy]] == marked


def test_held_out_accuracy_on_copied_tokens_counts_those_tokens_only():
    from inference.train.config import TrainConfig
    from inference.train.loop import evaluate

    model = build_compact_target(SMALL, 300, seed=0).eval()
    prefix = torch.randint(5, 300, (20,))
    ids = torch.randint(5, 300, (2, 30))
    mask = torch.rand(2, 30, generator=torch.Generator().manual_seed(1)) < 0.5
    copy = mask & (torch.rand(2, 30, generator=torch.Generator().manual_seed(2)) < 0.5)
    examples = [Example("t", ids[b], mask[b], copy[b]) for b in range(2)]
    config = TrainConfig(shape=SMALL, bf16=False, tokens_per_batch=256)
    loss, accuracy, copied_accuracy = evaluate(model, prefix, examples, torch.arange(300), config)
    with torch.no_grad():
        hidden, _, _ = scored_hidden(model, prefix, ids, torch.cat([mask[:, 1:], torch.zeros(2, 1, dtype=bool)], 1))
        right = logits_at(model, hidden).argmax(-1) == ids[:, 1:][mask[:, 1:]]
    on_copies = right[copy[:, 1:][mask[:, 1:]]]
    assert 0 < len(on_copies) < len(right)
    assert accuracy == pytest.approx(right.float().mean().item())
    assert copied_accuracy == pytest.approx(on_copies.float().mean().item())


def test_copy_weight_weighs_each_copied_tokens_loss_and_nothing_else():
    """weights of 1 give the plain mean; weights w on the copied tokens give (sum of the rest + w * sum over the
    copies) / (n_rest + w * n_copies), from the same per-token losses and the same argmax hits."""
    model = build_compact_target(SMALL, 300, seed=0).eval()
    prefix, ids = torch.randint(5, 300, (20,)), torch.randint(5, 300, (2, 30))
    mask = torch.rand(2, 30, generator=torch.Generator().manual_seed(1)) < 0.5
    copy = mask & (torch.rand(2, 30, generator=torch.Generator().manual_seed(2)) < 0.5)
    with torch.no_grad():
        plain, right = loss_and_hits(model, prefix, ids, mask)
        ones, right_ones = loss_and_hits(model, prefix, ids, mask, weights=torch.ones(2, 30))
        weighted, right_weighted = loss_and_hits(model, prefix, ids, mask, weights=1.0 + 2.0 * copy)
        hidden, _, _ = scored_hidden(model, prefix, ids, torch.cat([mask[:, 1:], torch.zeros(2, 1, dtype=bool)], 1))
        each = torch.nn.functional.cross_entropy(logits_at(model, hidden).float(), ids[:, 1:][mask[:, 1:]],
                                                 reduction="none")
    on_copies = copy[:, 1:][mask[:, 1:]]
    assert 0 < int(on_copies.sum()) < len(each)
    assert float(ones) == pytest.approx(float(plain), rel=1e-6)
    rest, copies = each[~on_copies], each[on_copies]
    expected = (rest.sum() + 3 * copies.sum()) / (len(rest) + 3 * len(copies))
    assert float(weighted) == pytest.approx(float(expected), rel=1e-5)
    assert abs(float(weighted) - float(plain)) > 1e-4  # (a random model: per-token losses differ little)
    assert torch.equal(right, right_ones) and torch.equal(right, right_weighted)


def test_q_and_k_norms_learn_at_their_own_rate_and_every_weight_trains_once():
    from inference.train.loop import param_groups

    model = build_compact_target(SMALL, 300, seed=0)
    groups = param_groups(model, 10.0, 5.0)
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())  # each once, none left out
    names = {id(p): n for n, p in model.named_parameters()}
    by_scale = {g["scale"]: sorted(names[id(p)] for p in g["params"]) for g in groups}
    assert by_scale[5.0] and all(n.endswith(("q_norm.weight", "k_norm.weight")) for n in by_scale[5.0])
    shared = SMALL.kv_shared  # KV-shared layers keep a q_norm and read the k_norm of a layer before them
    assert len(by_scale[5.0]) == 2 * SMALL.layers - shared
    assert "model.embed_tokens.weight" in by_scale[10.0]


@pytest.mark.skipif(not CORPUS.is_file(), reason="the corpus is not generated yet")
def test_every_written_span_ends_in_a_stop_token(tokenizer):
    data = build_dataset(tokenizer, CORPUS, limit=20)
    for example in data.examples:
        ids, loss = example.ids.tolist(), example.loss.tolist()
        ends = [ids[i] for i in range(len(ids)) if loss[i] and (i + 1 == len(ids) or not loss[i + 1])]
        assert ends and all(t in STOP_TOKEN_IDS for t in ends)
    assert len(data.vocab_ids()) < 2000  # the rows that get trained: a tiny part of the 262144


def test_a_smoke_run_trains_writes_and_reloads_the_pair(tmp_path, tokenizer):
    """A few steps of python -m inference.train on a small shape and a slice of a corpus: files that load."""
    from inference.train.__main__ import main

    corpus = tmp_path / "corpus.jsonl.gz"
    _write_tiny_corpus(corpus, tokenizer)
    args = ["--corpus", str(corpus), "--out", str(tmp_path / "w"), "--target-epochs", "1", "--drafter-epochs", "1",
            "--tokens-per-batch", "2048", "--drafter-tokens-per-batch", "2048", "--threads", "1",
            "--drill-steps", "60", "--drill-click-accuracy", "0",  # any accuracy counts as clicked: ends at 20
            "--drill-kinds", "repeat+recall", "--drill-every", "1",  # two phases, then a drill after each corpus step
            "--previous-token-heads", "1", "--tokenizer-merges", "40", "--number-digits", "2"]
    args += [f"--shape-{k.replace('_', '-')}={v}" for k, v in SMALL.__dict__.items()]
    assert main(args) == 0
    manifest = read_manifest(tmp_path / "w")
    assert manifest["seconds"]["target"] > 0 and manifest["target_curve"]
    assert manifest["train_config"]["previous_token_heads"] == 1
    assert [(p["kind"], p["step"]) for p in manifest["drill_curve"]] == [("repeat", 20), ("recall", 20)]  # each
    # phase ran, and stopped once clicked
    assert all(0 <= p["drill_accuracy"] <= 1 for p in manifest["target_curve"])  # drill steps ran among the corpus's
    target, drafter = load_mini_pair(folder=tmp_path / "w")
    assert target.config.num_hidden_layers == 10 and drafter.config.backbone_hidden_size == 32
    trained = target.model.embed_tokens.weight.abs().sum(1) > 0
    assert 0 < int(trained.sum()) == manifest["vocab_rows"]
    # the pair's own tokenizer: 40 learned rules, shipped and checked with the weights; the corpus's words whole
    assert MERGES_FILE in manifest["files"] and len(load_merges(tmp_path / "w")) == 40 + 100  # + "00".."99"
    own = load_mini_tokenizer(tmp_path / "w")
    assert own.tokenize(" squared") == ["Ġsquared"] and len(tokenizer.tokenize(" squared")) > 1
    assert own.tokenize("is 16.") == ["is", "Ġ", "16", "."]
    assert trained[own.convert_tokens_to_ids("Ġsquared")]
    (tmp_path / "w" / MERGES_FILE).write_text("#version: 0.2\nĠ s\n")
    with pytest.raises(ValueError, match="sha256"):
        load_mini_pair(folder=tmp_path / "w")


def _write_tiny_corpus(path, tokenizer) -> None:
    """Six two-step transcripts in the corpus format (tool call, tool reply, final answer)."""
    system = {"role": "system", "content": "You are a coding agent."}
    tools = [{"type": "function", "function": {"name": "run_python", "description": "Run Python.", "parameters": {
        "type": "object", "properties": {"code": {"type": "string", "description": "source"}}, "required": []}}}]
    lines = [{"format": 1, "tools": tools, "settings": {}}]
    for n in range(6):
        lines.append({"family": "t", "key": f"t{n}", "no_loss": [], "messages": [
            system, {"role": "user", "content": f"Print {n} squared."},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "a", "type": "function", "function": {
                "name": "run_python", "arguments": {"code": f"print({n} ** 2)\n"}}}]},
            {"role": "tool", "tool_call_id": "a", "name": "run_python", "content": f"exit code 0\noutput:\n{n * n}\n"},
            {"role": "assistant", "content": f"{n} squared is {n * n}."}]})
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(line) for line in lines) + "\n")
