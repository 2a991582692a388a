"""Build agent records (results, comparisons, steps) from plain numbers for the page's tests."""

from __future__ import annotations

from agents.events import Step, ToolCall, ToolResult
from protocol import Comparison, DrafterStats, GenerationResult, GenerationStats, first_divergence


def make_result(tokens: list[str], wall_s: float, *, drafted: list[bool] | None = None, k: int = 4) -> GenerationResult:
    """A generation of the given token pieces; `drafted` marks which came from the drafter."""
    drafter = None
    if drafted is not None:
        accepted = sum(drafted)
        rounds = max(1, len(drafted) - accepted)
        drafter = DrafterStats(draft_tokens=k, rounds=rounds, drafted_tokens=rounds * k, accepted_tokens=accepted,
                               accepted_by_position=tuple(max(0.0, 0.9 - 0.2 * i) for i in range(k)),
                               draft_s=wall_s / 4, verify_s=wall_s / 2)
    stats = GenerationStats(used_drafter=drafted is not None, prompt_tokens=50, new_tokens=len(tokens),
                            prefill_s=wall_s / 10, decode_s=wall_s * 0.9, wall_s=wall_s, peak_mem_bytes=None,
                            drafter=drafter)
    # The first token comes from the prefill (no draft tried); every later target token replaced a refused draft.
    rejected = None if drafted is None else tuple(i > 0 and not d for i, d in enumerate(drafted))
    return GenerationResult(text="".join(tokens), token_ids=tuple(range(len(tokens))), token_texts=tuple(tokens),
                            stop_reason="eos", stats=stats, provenance=tuple(drafted) if drafted is not None else None,
                            draft_rejected=rejected)


def make_step(index: int, *, baseline_s: float = 1.0, drafter_s: float = 0.5, code: str | None = "print(6*7)",
              output: str = "42\n", text: str = "", thoughts: str = "") -> Step:
    """A compare-mode step; with `code` it calls run_python, without it is the final answer."""
    tokens = ["Let", " me", " run", " it", "."]
    base = make_result(tokens, baseline_s)
    draft = make_result(tokens, drafter_s, drafted=[True, True, False, True, False])
    comparison = Comparison(baseline=base, drafter=draft, first_run="baseline",
                            first_divergence=first_divergence(base.token_ids, draft.token_ids))
    calls, results = (), ()
    if code is not None:
        call = ToolCall(name="run_python", arguments={"code": code}, id=f"call-{index}")
        calls, results = (call,), (ToolResult(call=call, output=output, is_error=False, duration_s=0.25),)
    return Step(index=index, kind="tool_call" if calls else "final_answer", text=text, thoughts=thoughts,
                tool_calls=calls, tool_results=results, tool_s=0.25 if calls else 0.0, result=draft,
                comparison=comparison)
