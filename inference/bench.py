"""Benchmarks that print numbers: both engines side by side on one model, and per-round costs at real shapes.

    python -m inference.bench --model tiny --max-new-tokens 64 --runs 3 [--k 6] [--engine both] [--json FILE]
    python -m inference.bench --costs --shape tiny|e2b|31b [--k 6] [--context 1024] [--engine both] [--json FILE]

The first runs the identical prompt without and with the drafter on each engine (one copy of the weights,
medians of R runs after a warm-up): tokens/s each way, speedup, per-round costs split into verify / draft /
glue, host syncs per target pass, peak memory. The second needs no real weights: random weights at a real
shape, every draft forced accepted (and checked), timing a plain decoding step and a full round per engine,
then the speedup those costs imply at acceptance 0.8 and 0.9. On a GPU our loop runs both eager and under
CUDA graphs.
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
from inference.loading import DTYPES, load_engine
from inference.measure import check_all_accepted, counting_host_syncs, drafter_always_accepted
from protocol import GenerationResult, GenerationSettings, ModelError

SYSTEM = "You are a helpful expert software architect."
USER = "Design a complete hospital management system REST API."
ENGINE_CHOICES = ("both", "fast", "transformers")


def engine_variants(engine: Engine, which: str) -> dict[str, Engine]:
    """The engines to compare, all around the loaded engine's weights (one copy of the model in memory)."""
    def around(kind: str, cuda_graphs: bool | None = None) -> Engine:
        return Engine(engine.target, engine.drafter, engine.tokenizer, model_id=engine.model_id,
                      drafter_id=engine.drafter_id, engine=kind, cuda_graphs=cuda_graphs)

    variants: dict[str, Engine] = {}
    if which in ("both", "fast"):
        variants["fast"] = engine if engine.engine == "fast" else around("fast")
        if engine.device.type == "cuda" and variants["fast"].decode != "eager":
            variants["fast-eager"] = around("fast", cuda_graphs=False)
    if which in ("both", "transformers"):
        variants["transformers"] = engine if engine.engine == "transformers" else around("transformers")
    return variants


def syncs_per_pass(engine: Engine, run) -> float:
    """Host syncs per target forward pass of one generation (run: () -> GenerationResult), counted apart."""
    with counting_host_syncs(engine.device) as syncs:
        result: GenerationResult = run()
    passes = result.stats.drafter.rounds + 1 if result.stats.drafter else result.stats.new_tokens
    return syncs.count / passes


def round_costs(result: GenerationResult) -> dict:
    """Seconds per round of a drafter run: target verify pass, drafter steps, and everything else (glue)."""
    d = result.stats.drafter
    rounds = max(d.rounds, 1)
    return {"verify_s": d.verify_s / rounds, "draft_s": d.draft_s / rounds,
            "glue_s": max(0.0, result.stats.decode_s - d.verify_s - d.draft_s) / rounds}


# ---- the experiment ----

def run_experiment(model: str, max_new_tokens: int, runs: int, k: int, drafter: str | None = None,
                   which: str = "both", dtype: str | None = None) -> dict:
    loaded = load_engine(model, drafter, dtype=dtype, engine="transformers" if which == "transformers" else "fast",
                         on_progress=lambda m, f: print(f"  {m}", file=sys.stderr))
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    settings = GenerationSettings(max_new_tokens=max_new_tokens, draft_tokens=k)
    report = {"environment": loaded.describe(), "settings": asdict(settings), "runs": runs, "engines": {}}
    variants = engine_variants(loaded, which)
    for engine in variants.values():
        engine.compare(messages, settings=GenerationSettings(max_new_tokens=8, draft_tokens=k))  # warm-up
    comparisons = {name: [] for name in variants}
    for _ in range(runs):  # engines interleaved run by run: a machine that slows down slows all of them
        for name, engine in variants.items():
            comparisons[name].append(engine.compare(messages, settings=settings))
    outputs = {}
    for name, engine in variants.items():
        syncs = {mode: syncs_per_pass(engine, lambda: engine.generate(messages, use_drafter=mode == "drafter",
                                                                       settings=settings))
                 for mode in ("baseline", "drafter")}
        report["engines"][name] = {"summary": summarize(comparisons[name], syncs), "describe": engine.describe(),
                                   "per_run": [comparison_row(c) for c in comparisons[name]]}
        outputs[name] = [c.drafter.token_ids for c in comparisons[name]]
    if "fast" in outputs and "transformers" in outputs:
        fast, ref = report["engines"]["fast"]["summary"], report["engines"]["transformers"]["summary"]
        report["fast_vs_transformers"] = {
            "baseline_speedup": fast["baseline_tokens_per_s"] / ref["baseline_tokens_per_s"],
            "drafter_speedup": fast["drafter_tokens_per_s"] / ref["drafter_tokens_per_s"],
            "identical_runs": sum(a == b for a, b in zip(outputs["fast"], outputs["transformers"]))}
    return report


def comparison_row(c) -> dict:
    d = c.drafter.stats.drafter
    return {"first_run": c.first_run, "baseline_tokens_per_s": c.baseline.stats.tokens_per_s,
            "drafter_tokens_per_s": c.drafter.stats.tokens_per_s, "speedup": c.speedup,
            "baseline_new_tokens": c.baseline.stats.new_tokens, "drafter_new_tokens": c.drafter.stats.new_tokens,
            "acceptance_rate": d.acceptance_rate, "mean_accepted_length": d.mean_accepted_length,
            "identical": c.identical, "first_divergence": c.first_divergence, "rounds": d.rounds,
            "draft_s": d.draft_s, "verify_s": d.verify_s, "baseline_wall_s": c.baseline.stats.wall_s,
            "drafter_wall_s": c.drafter.stats.wall_s, "baseline_peak_mem_bytes": c.baseline.stats.peak_mem_bytes,
            "drafter_peak_mem_bytes": c.drafter.stats.peak_mem_bytes, **round_costs(c.drafter)}


def summarize(comparisons: list, syncs: dict[str, float]) -> dict:
    rows = [comparison_row(c) for c in comparisons]
    median = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
    peaks = [r[key] for r in rows for key in ("baseline_peak_mem_bytes", "drafter_peak_mem_bytes") if r[key]]
    return {"baseline_tokens_per_s": median("baseline_tokens_per_s"), "drafter_tokens_per_s": median("drafter_tokens_per_s"),
            "speedup": median("speedup"), "acceptance_rate": median("acceptance_rate"),
            "mean_accepted_length": median("mean_accepted_length"), "identical_runs": sum(r["identical"] for r in rows),
            "verify_s_per_round": median("verify_s"), "draft_s_per_round": median("draft_s"),
            "glue_s_per_round": median("glue_s"), "baseline_syncs_per_pass": syncs["baseline"],
            "drafter_syncs_per_pass": syncs["drafter"], "peak_mem_bytes": max(peaks) if peaks else None}


def format_experiment(report: dict) -> str:
    env = report["environment"]
    ms = lambda s: f"{s * 1e3:.2f}"  # noqa: E731
    lines = [f"target {env['target']}  drafter {env['drafter']}  on {env['gpu'] or env['device']} ({env['dtype']}), "
             f"torch {env['torch']}, transformers {env['transformers']}",
             f"max_new_tokens {report['settings']['max_new_tokens']}, k {report['settings']['draft_tokens']}, "
             f"medians of {report['runs']} runs after a warm-up; ms per round of the drafter runs", "",
             f"{'engine':<14}{'decode':<12}{'tok/s base':>11}{'tok/s draft':>12}{'speedup':>9}{'accept':>8}"
             f"{'identical':>10}{'verify':>8}{'draft':>8}{'glue':>8}{'syncs/pass':>12}{'peak mem':>10}"]
    for name, entry in report["engines"].items():
        s, decode = entry["summary"], entry["describe"]["decode"]
        peak = f"{s['peak_mem_bytes'] / 2**30:.2f}G" if s["peak_mem_bytes"] else "n/a"
        lines.append(f"{name:<14}{decode:<12}{s['baseline_tokens_per_s']:>11.2f}{s['drafter_tokens_per_s']:>12.2f}"
                     f"{s['speedup']:>8.2f}x{s['acceptance_rate']:>8.1%}{s['identical_runs']:>6} of {report['runs']}"
                     f"{ms(s['verify_s_per_round']):>8}{ms(s['draft_s_per_round']):>8}{ms(s['glue_s_per_round']):>8}"
                     f"{s['baseline_syncs_per_pass']:>5.1f} /{s['drafter_syncs_per_pass']:>5.1f}{peak:>10}")
    if "fast_vs_transformers" in report:
        x = report["fast_vs_transformers"]
        lines += ["", f"fast vs transformers: plain {x['baseline_speedup']:.2f}x, with the drafter "
                      f"{x['drafter_speedup']:.2f}x; drafter outputs identical across engines in "
                      f"{x['identical_runs']} of {report['runs']} runs"]
    return "\n".join(lines)


# ---- per-round costs at a shape ----

@dataclass(frozen=True)
class RoundCosts:
    target_1_s: float  # one plain decoding step (a 1-token target pass plus its glue)
    target_k1_s: float  # one target pass over k+1 tokens (a verification round)
    drafter_step_s: float  # one drafter step
    glue_s: float  # the rest of a round: acceptance, bookkeeping, host syncs
    k: int
    syncs_per_round: float = 0.0

    def speedup_at(self, acceptance: float) -> float:
        """Implied speedup if each draft position is accepted with this probability, independently."""
        a, k = acceptance, self.k
        tokens_per_round = (1 - a ** (k + 1)) / (1 - a) if a < 1 else k + 1
        round_s = self.target_k1_s + k * self.drafter_step_s + self.glue_s
        return tokens_per_round * self.target_1_s / round_s


def measure_costs(shape: str, k: int, context: int, which: str = "both", dtype: str | None = None,
                  rounds: int = 8, repeats: int = 5) -> tuple[dict[str, RoundCosts], dict]:
    """Per engine: medians over `repeats` generations of `rounds` rounds each, after a warm-up."""
    from inference.shapes import build_pair
    from inference.tokenizer import build_tiny_tokenizer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = DTYPES[dtype] if dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    target, drafter = build_pair(shape, device, torch_dtype)
    base = Engine(target, drafter, build_tiny_tokenizer(), model_id=f"random-{shape}", drafter_id=f"random-{shape}",
                  engine="transformers" if which == "transformers" else "fast")
    prompt = torch.randint(1000, 200_000, (1, context), generator=torch.Generator().manual_seed(0))
    plain = GenerationSettings(max_new_tokens=1 + rounds, draft_tokens=k)
    forced = GenerationSettings(max_new_tokens=1 + rounds * (k + 1), draft_tokens=k)
    variants = engine_variants(base, which)
    steps = {name: [] for name in variants}
    rounds_run = {name: [] for name in variants}
    for engine in variants.values():  # warm-up
        engine.generate_ids(prompt, use_drafter=False, settings=plain)
        with drafter_always_accepted(engine):
            engine.generate_ids(prompt, use_drafter=True, settings=forced)
    for _ in range(repeats):  # engines interleaved: a machine that slows down slows all of them
        for name, engine in variants.items():
            steps[name].append(engine.generate_ids(prompt, use_drafter=False, settings=plain))
            with drafter_always_accepted(engine):
                rounds_run[name].append(engine.generate_ids(prompt, use_drafter=True, settings=forced))
    costs = {}
    for name, engine in variants.items():
        with drafter_always_accepted(engine):
            syncs = syncs_per_pass(engine, lambda: engine.generate_ids(prompt, use_drafter=True, settings=forced))
        for result in rounds_run[name]:
            check_all_accepted(result)
        step_s = statistics.median(r.stats.decode_s / max(r.stats.new_tokens - 1, 1) for r in steps[name])
        per_round = {key: statistics.median(round_costs(r)[key] for r in rounds_run[name])
                     for key in ("verify_s", "draft_s", "glue_s")}
        costs[name] = RoundCosts(step_s, per_round["verify_s"], per_round["draft_s"] / k, per_round["glue_s"], k, syncs)
    env = {"shape": shape, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "dtype": str(torch_dtype).removeprefix("torch."), "torch": torch.__version__,
           "transformers": transformers.__version__, "context_tokens": context,
           "target_params": sum(p.numel() for p in target.parameters()),
           "drafter_params": sum(p.numel() for p in drafter.parameters()), "date": time.strftime("%Y-%m-%d"),
           "decode": {name: e.describe()["decode"] for name, e in variants.items()}}
    return costs, env


def format_costs(costs: dict[str, RoundCosts], env: dict) -> str:
    ms = lambda s: f"{s * 1e3:>12.3f}"  # noqa: E731
    names = list(costs)
    lines = [f"shape {env['shape']} (random weights, target {env['target_params'] / 1e9:.2f} B params, drafter "
             f"{env['drafter_params'] / 1e6:.1f} M) on {env['device']} {env['dtype']}, context {env['context_tokens']} "
             f"tokens, every draft accepted, torch {env['torch']}, transformers {env['transformers']}, {env['date']}",
             f"{'ms':<28}" + "".join(f"{n:>14}" for n in names)]
    first = costs[names[0]]
    rows = [("plain step, 1 token", "target_1_s"), (f"verify, k+1={first.k + 1} tokens", "target_k1_s"),
            ("drafter step", "drafter_step_s"), ("glue per round", "glue_s")]
    for label, key in rows:
        lines.append(f"{label:<28}" + "".join(f"  {ms(getattr(costs[n], key))}" for n in names))
    lines.append(f"{'host syncs per round':<28}" + "".join(f"{costs[n].syncs_per_round:>14.1f}" for n in names))
    for a in (0.8, 0.9):
        lines.append(f"{f'implied speedup at a={a}':<28}" + "".join(f"{costs[n].speedup_at(a):>13.2f}x" for n in names))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="tiny", help="preset or Hub id (experiment)")
    p.add_argument("--drafter", default=None)
    p.add_argument("--max-new-tokens", type=int, default=2048)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--k", type=int, default=6, help="draft length")
    p.add_argument("--engine", default="both", choices=ENGINE_CHOICES, help="which engines to run side by side")
    p.add_argument("--dtype", default=None, choices=list(DTYPES), help="default: bf16 on a GPU, fp32 on a CPU")
    p.add_argument("--costs", action="store_true", help="measure per-round costs at a shape instead")
    p.add_argument("--shape", default="e2b", choices=["tiny", "e2b", "31b"])
    p.add_argument("--context", type=int, default=1024, help="prompt length for --costs")
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    args = p.parse_args(argv)
    try:
        if args.costs:
            costs, env = measure_costs(args.shape, args.k, args.context, args.engine, args.dtype)
            report = {"environment": env, "costs": {n: asdict(c) for n, c in costs.items()},
                      "implied_speedup": {n: {str(a): c.speedup_at(a) for a in (0.8, 0.9)} for n, c in costs.items()}}
            print(format_costs(costs, env))
        else:
            report = run_experiment(args.model, args.max_new_tokens, args.runs, args.k, args.drafter, args.engine,
                                    args.dtype)
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
