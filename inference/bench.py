"""Benchmarks that print numbers: the drafter experiment users know, and per-round costs at real shapes.

    python -m inference.bench --model tiny --max-new-tokens 64 --runs 3 [--k 6] [--json FILE]
    python -m inference.bench --costs --shape e2b|31b|tiny [--k 6] [--context 1024] [--json FILE]

The first runs the identical prompt without and with the drafter (medians of R runs after a warm-up).
The second needs no real weights: it times a target pass over 1 and k+1 tokens, one drafter step, and the
glue of a full round, then says what speedup those costs imply at acceptance 0.8 and 0.9.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import torch
import transformers

from inference.engine import Engine
from inference.loading import load_engine
from inference.measure import Clock, drafter_always_accepted
from protocol import Comparison, GenerationSettings, ModelError

SYSTEM = "You are a helpful expert software architect."
USER = "Design a complete hospital management system REST API."


# ---- the experiment ----

def run_experiment(model: str, max_new_tokens: int, runs: int, k: int, drafter: str | None = None) -> dict:
    engine = load_engine(model, drafter, on_progress=lambda m, f: print(f"  {m}", file=sys.stderr))
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    settings = GenerationSettings(max_new_tokens=max_new_tokens, draft_tokens=k)
    comparisons = [engine.compare(messages, settings=settings) for _ in range(runs)]
    return {"environment": engine.describe(), "settings": asdict(settings), "runs": runs,
            "summary": summarize(comparisons), "per_run": [comparison_row(c) for c in comparisons]}


def comparison_row(c: Comparison) -> dict:
    d = c.drafter.stats.drafter
    return {"first_run": c.first_run, "baseline_tokens_per_s": c.baseline.stats.tokens_per_s,
            "drafter_tokens_per_s": c.drafter.stats.tokens_per_s, "speedup": c.speedup,
            "baseline_new_tokens": c.baseline.stats.new_tokens, "drafter_new_tokens": c.drafter.stats.new_tokens,
            "acceptance_rate": d.acceptance_rate, "mean_accepted_length": d.mean_accepted_length,
            "identical": c.identical, "first_divergence": c.first_divergence,
            "draft_s": d.draft_s, "verify_s": d.verify_s, "baseline_wall_s": c.baseline.stats.wall_s,
            "drafter_wall_s": c.drafter.stats.wall_s, "baseline_peak_mem_bytes": c.baseline.stats.peak_mem_bytes,
            "drafter_peak_mem_bytes": c.drafter.stats.peak_mem_bytes}


def summarize(comparisons: list[Comparison]) -> dict:
    rows = [comparison_row(c) for c in comparisons]
    median = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
    peaks = [r["drafter_peak_mem_bytes"] for r in rows if r["drafter_peak_mem_bytes"]]
    return {"baseline_tokens_per_s": median("baseline_tokens_per_s"), "drafter_tokens_per_s": median("drafter_tokens_per_s"),
            "speedup": median("speedup"), "acceptance_rate": median("acceptance_rate"),
            "mean_accepted_length": median("mean_accepted_length"), "identical_runs": sum(r["identical"] for r in rows),
            "peak_mem_bytes": max(peaks) if peaks else None}


def format_experiment(report: dict) -> str:
    s, env = report["summary"], report["environment"]
    peak = f"{s['peak_mem_bytes'] / 2**30:.2f} GiB" if s["peak_mem_bytes"] else "n/a (CPU)"
    lines = [f"target {env['target']}  drafter {env['drafter']}  on {env['gpu'] or env['device']} ({env['dtype']}), "
             f"torch {env['torch']}, transformers {env['transformers']}",
             f"max_new_tokens {report['settings']['max_new_tokens']}, k {report['settings']['draft_tokens']}, "
             f"medians of {report['runs']} runs after a warm-up", "",
             f"{'':<22}{'baseline':>12}{'drafter':>12}",
             f"{'tokens/s':<22}{s['baseline_tokens_per_s']:>12.2f}{s['drafter_tokens_per_s']:>12.2f}",
             f"{'speedup':<22}{'':>12}{s['speedup']:>11.2f}x",
             f"{'acceptance':<22}{'':>12}{s['acceptance_rate']:>12.1%}",
             f"{'mean accepted / round':<22}{'':>12}{s['mean_accepted_length']:>12.2f}",
             f"{'identical output':<22}{'':>12}{s['identical_runs']:>7} of {report['runs']}",
             f"{'peak memory':<22}{'':>12}{peak:>12}"]
    return "\n".join(lines)


# ---- per-round costs at a shape ----

@dataclass(frozen=True)
class RoundCosts:
    target_1_s: float  # one target pass over 1 new token (plain decoding's cost per token)
    target_k1_s: float  # one target pass over k+1 tokens (a verification round)
    drafter_step_s: float  # one drafter step
    glue_s: float  # the rest of a round in Transformers' loop: sampling, cache trims, bookkeeping
    k: int

    def speedup_at(self, acceptance: float) -> float:
        """Implied speedup if each draft position is accepted with this probability, independently."""
        a, k = acceptance, self.k
        tokens_per_round = (1 - a ** (k + 1)) / (1 - a) if a < 1 else k + 1
        round_s = self.target_k1_s + k * self.drafter_step_s + self.glue_s
        return tokens_per_round * self.target_1_s / round_s


def measure_costs(shape: str, k: int, context: int, repeats: int = 20) -> tuple[RoundCosts, dict]:
    from transformers import DynamicCache

    from inference.shapes import build_pair

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    target, drafter = build_pair(shape, device, dtype)
    clock = Clock(device)
    prompt = torch.randint(1000, 200_000, (1, context), device=device)

    def timed(fn) -> float:
        fn()  # warm-up
        clock.sync()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        clock.sync()
        return (time.perf_counter() - start) / repeats

    with torch.inference_mode():
        cache = DynamicCache(config=target.config)
        for layer in cache.layers:  # sliding layers must keep what a crop rolls back, as assisted decoding does
            if hasattr(layer, "activate_past_recording"):
                layer.activate_past_recording()
        out = target(input_ids=prompt, past_key_values=cache, use_cache=True, output_hidden_states=True,
                     return_shared_kv_states=True)
        kv, hidden = out.shared_kv_states, out.hidden_states[-1][:, -1:]

        def target_pass(n):
            def run():
                target(input_ids=prompt[:, -n:], past_key_values=cache, use_cache=True)
                cache.crop(-n)  # keep the context fixed: every pass sees the same cache length
            return run

        def drafter_step():
            embeds = torch.cat([target.get_input_embeddings()(prompt[:, -1:]), hidden], dim=-1)
            drafter(inputs_embeds=embeds, position_ids=torch.tensor([[context - 1]], device=device),
                    shared_kv_states=kv, use_cache=False)

        t1, tk1, step = timed(target_pass(1)), timed(target_pass(k + 1)), timed(drafter_step)
    glue = measure_glue(target, drafter, k)
    env = {"shape": shape, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "dtype": str(dtype).removeprefix("torch."), "torch": torch.__version__,
           "transformers": transformers.__version__, "context_tokens": context,
           "target_params": sum(p.numel() for p in target.parameters()),
           "drafter_params": sum(p.numel() for p in drafter.parameters()),
           "date": time.strftime("%Y-%m-%d")}
    return RoundCosts(t1, tk1, step, glue, k), env


def measure_glue(target, drafter, k: int) -> float:
    """Per round of generate() at full acceptance: the time outside drafter steps and target passes."""
    from inference.tokenizer import build_tiny_tokenizer

    engine = Engine(target, drafter, build_tiny_tokenizer(), model_id="shape", drafter_id="shape")
    settings = GenerationSettings(max_new_tokens=1 + 8 * (k + 1), draft_tokens=k)
    messages = [{"role": "user", "content": USER}]
    with drafter_always_accepted(engine):
        engine.generate(messages, use_drafter=True, settings=settings)  # warm-up
        result = engine.generate(messages, use_drafter=True, settings=settings)
    d = result.stats.drafter
    return max(0.0, result.stats.decode_s - d.draft_s - d.verify_s) / d.rounds


def format_costs(costs: RoundCosts, env: dict) -> str:
    ms = lambda s: f"{s * 1e3:8.2f} ms"  # noqa: E731
    lines = [f"shape {env['shape']} (random weights, target {env['target_params'] / 1e9:.2f} B params, drafter "
             f"{env['drafter_params'] / 1e6:.1f} M) on {env['device']} {env['dtype']}, context {env['context_tokens']} "
             f"tokens, torch {env['torch']}, transformers {env['transformers']}, {env['date']}",
             f"target pass, 1 token        {ms(costs.target_1_s)}",
             f"target pass, k+1={costs.k + 1} tokens   {ms(costs.target_k1_s)}",
             f"drafter step                {ms(costs.drafter_step_s)}",
             f"glue per round              {ms(costs.glue_s)}"]
    for a in (0.8, 0.9):
        lines.append(f"implied speedup at acceptance {a}: {costs.speedup_at(a):.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="tiny", help="preset or Hub id (experiment)")
    p.add_argument("--drafter", default=None)
    p.add_argument("--max-new-tokens", type=int, default=2048)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--k", type=int, default=6, help="draft length")
    p.add_argument("--costs", action="store_true", help="measure per-round costs at a shape instead")
    p.add_argument("--shape", default="e2b", choices=["tiny", "e2b", "31b"])
    p.add_argument("--context", type=int, default=1024, help="cache length for --costs")
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    args = p.parse_args(argv)
    try:
        if args.costs:
            costs, env = measure_costs(args.shape, args.k, args.context)
            report = {"environment": env, "costs": asdict(costs),
                      "implied_speedup": {str(a): costs.speedup_at(a) for a in (0.8, 0.9)}}
            print(format_costs(costs, env))
        else:
            report = run_experiment(args.model, args.max_new_tokens, args.runs, args.k, args.drafter)
            print(format_experiment(report))
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
