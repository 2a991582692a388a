"""Gradio playground: builds the page, wires it to the coding agent, launches. The only gradio importer.

Knows no tensors, chat templates or timing code. The pieces it wires: ui.models (the one model and how it
is switched), ui.sessions (per-tab state), ui.runner (the GPU function: what @spaces.GPU wraps on ZeroGPU),
ui.view (what each panel shows). Run `python app.py --help` for the options and their environment
equivalents.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

if os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "true"):
    import spaces  # noqa: F401 - ZeroGPU patches torch on import: before torch loads and before the model moves to cuda

import gradio as gr

from agents import MAX_TASK_CHARS, AgentConfig, check_task
from agents.sandbox import harden_server_process, make_workspace, open_sandbox, probe_isolation, remove_workspace
from inference import DTYPES, ENGINES, PRESETS, cuda_available, default_model, draft_tokens_for, load_engine
from protocol import GenerationSettings, ModelError
from ui.driver import drive
from ui.live import LiveView
from ui.models import ModelHolder
from ui.preflight import preflight
from ui.render import escape_html, run_state_html
from ui.runner import SERVED, RunJob, estimate_gpu_s, run_job
from ui.sessions import Session, Sessions, queue_state
from ui.settings import ServerSettings
from ui.tables import LATENCY_ORDER, TABLE_WIDTHS_PX
from ui.view import NO_STEP, numbers_view, provenance_view, stream_view

log = logging.getLogger("playground")
ASSETS = Path(__file__).resolve().parent / "assets"
STOP_WAIT_S = 15.0  # after Stop, how long the page waits for the run to wind down before drawing it
COLORS = {"target only": "#94a3b8", "with drafter": "#16a34a"}


def plot(frame: Any) -> Any:
    """A plot's value: None while it has no points. Gradio draws a plot's axes and colours from the first
    value it gets after None and only swaps the data later, so a plot starts from None, never from an
    empty frame, and its props (sort, colours) never change after start-up."""
    return None if frame is None or frame.empty else frame


def gpu_function(settings: ServerSettings) -> Callable[[RunJob], Iterator[Any]]:
    """ui.runner.run_job; on ZeroGPU wrapped by spaces.GPU (a forked worker, pickled in and out) with a
    duration estimated from the run's settings."""
    if not settings.zero_gpu:
        return run_job
    import spaces  # installed on every Space; needed only on ZeroGPU

    return spaces.GPU(duration=estimate_gpu_s)(run_job)


def layout(holder: ModelHolder, settings: ServerSettings, *, banners: str, isolation: str,
           defaults: dict[str, Any]) -> SimpleNamespace:
    """The page's components (inside a gr.Blocks), returned by name for wiring."""
    examples = json.loads((ASSETS / "examples.json").read_text())
    blank = numbers_view([])
    ui = SimpleNamespace()
    gr.Markdown("# ⚡ Gemma 4 MTP drafter playground\nA coding agent works on your task; every reasoning step runs on "
                "the target model **with and without** its multi-token-prediction drafter, on the identical prompt, "
                "so you see what the drafter buys.")
    gr.HTML(banners, elem_id="banners")
    ui.model_status = gr.HTML(holder.status(), elem_id="model-status")
    with gr.Row(equal_height=False, elem_id="main-row"):
        with gr.Column(scale=5, min_width=320, elem_id="chat-col"):
            ui.chat = gr.Chatbot(label="Agent", height=560, elem_id="chat", buttons=["copy"], feedback_options=None,
                                 latex_delimiters=[], allow_tags=False, sanitize_html=True,
                                 placeholder="Pick an example or type a coding task below.")
            ui.task = gr.Textbox(label="Task (or a follow-up once a run has ended)", lines=3, max_lines=12,
                                 max_length=MAX_TASK_CHARS, elem_id="task",
                                 placeholder="e.g. Write and run a function that …")
            with gr.Row(elem_id="buttons"):
                ui.run_btn = gr.Button("Run", variant="primary", elem_id="run-btn")
                ui.stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                ui.new_btn = gr.Button("New run", elem_id="new-btn")
            with gr.Column(elem_id="examples"):
                gr.Examples([[e["task"]] for e in examples], inputs=[ui.task], label="Example tasks",
                            example_labels=[e["title"] for e in examples], examples_per_page=8)
            with gr.Accordion("Settings", open=False, elem_id="settings"):
                switchable = settings.allow_model_switch
                with gr.Row():
                    ui.model_box = gr.Dropdown(list(PRESETS), value=defaults["model"], label="Model (preset or Hub id)",
                                               allow_custom_value=True, interactive=switchable)
                    ui.drafter_box = gr.Textbox(defaults["drafter"] or "", label="Drafter id (blank: the preset's)",
                                                interactive=switchable)
                    ui.load_btn = gr.Button("Load model", interactive=switchable)
                if not switchable:
                    gr.Markdown("Model switching is off on this shared server (it would unload the model every "
                                "visitor uses). The owner enables it with `PLAYGROUND_ALLOW_MODEL_SWITCH=1`.")
                with gr.Row():
                    ui.mode = gr.Radio(["compare", "drafter", "baseline"], value="compare", label="Mode")
                    ui.thinking = gr.Checkbox(False, label="Thinking")
                with gr.Row():
                    ui.k = gr.Slider(1, 16, value=defaults["draft_tokens"], step=1, label="Draft length k")
                    ui.max_new = gr.Slider(16, 4096, value=defaults["max_new_tokens"], step=16, label="Max new tokens",
                                           elem_id="max-new")
                    ui.temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.05, label="Temperature (0 = greedy)")
                    ui.max_steps = gr.Slider(1, 24, value=defaults["max_steps"], step=1, label="Max agent steps")
                gr.Markdown(f"Tasks are limited to {MAX_TASK_CHARS:,} characters and prompts to "
                            f"{settings.max_prompt_tokens:,} tokens (`PLAYGROUND_MAX_PROMPT_TOKENS`).")
        with gr.Column(scale=4, min_width=320, elem_id="results-col"):
            ui.run_state = gr.HTML(run_state_html("No run yet."), elem_id="run-state")
            ui.summary = gr.HTML(blank.summary, elem_id="summary")
            ui.live = gr.HTML(LiveView().html(0.0), elem_id="live")
            with gr.Tabs(elem_id="tabs"):
                with gr.Tab("Per step", elem_id="tab-steps"):
                    ui.table = gr.Dataframe(blank.table, label="Per step (server-measured)", elem_id="step-table",
                                            interactive=False, wrap=True, pinned_columns=1, max_height=420,
                                            column_widths=list(TABLE_WIDTHS_PX))
                    ui.latency = gr.BarPlot(None, x="step", y="seconds", color="run", color_map=COLORS,
                                            sort=list(LATENCY_ORDER),
                                            x_title="step · T target only · D with drafter", y_title="seconds",
                                            color_title="run", show_label=False, elem_id="latency-plot", height=300)
                with gr.Tab("Cumulative", elem_id="tab-cumulative"):
                    gr.Markdown("**Elapsed LLM time so far, with and without the drafter** (compared steps that ran "
                                "to the end)")
                    ui.cumulative = gr.LinePlot(None, x="step", y="seconds", color="run", color_map=COLORS,
                                                x_title="step", y_title="LLM seconds so far", color_title="run",
                                                show_label=False, elem_id="cumulative-plot", height=300)
                    ui.cumulative_note = gr.Markdown(blank.cumulative_note, elem_id="cumulative-note")
                with gr.Tab("By content", elem_id="tab-content"):
                    ui.content_plot = gr.BarPlot(None, x="content", y="acceptance %", y_lim=[0, 100],
                                                 tooltip=["content", "acceptance %", "accepted / tried"],
                                                 label="Drafter acceptance by content, this run",
                                                 elem_id="content-plot", height=220)
                    ui.content_table = gr.Dataframe(blank.content_table, label="Per step: rate (accepted / tried)",
                                                    elem_id="content-table", interactive=False, wrap=True)
                with gr.Tab("Token provenance", elem_id="tab-provenance"):
                    ui.step_pick = gr.Dropdown([], label="Step", elem_id="step-pick", interactive=True)
                    ui.provenance = gr.HTML(NO_STEP, elem_id="provenance")
                    ui.position = gr.BarPlot(None, x="draft position", y="acceptance %", y_lim=[0, 100],
                                             label="Acceptance by draft position", elem_id="position-plot", height=200)
            ui.export = gr.DownloadButton("Export run as JSON", interactive=False, elem_id="export")
    with gr.Accordion("Sandbox and isolation probe", open=False):
        gr.HTML(f'<div class="isolation"><pre>{escape_html(isolation)}</pre></div>')
    return ui


def build_page(holder: ModelHolder, sessions: Sessions, settings: ServerSettings, gpu_run, *, banners: str,
               isolation: str, defaults: dict[str, Any], environment: dict[str, Any]) -> gr.Blocks:
    with gr.Blocks(title="Gemma 4 MTP drafter playground") as demo:
        ui = layout(holder, settings, banners=banners, isolation=isolation, defaults=defaults)
        run_outputs = [ui.chat, ui.run_state, ui.summary, ui.live, ui.table, ui.latency, ui.cumulative,
                       ui.cumulative_note, ui.content_plot, ui.content_table, ui.step_pick, ui.provenance, ui.position,
                       ui.export]

        def outputs(session: Session, numbers: bool = True, provenance_mode: str = "keep",
                    export_mode: str = "keep") -> list[Any]:
            """The run panels for `session`. numbers: redraw the summary, table and plots (a step finished);
            provenance_mode: keep (the visitor's pick), reset, or final (the last step); export_mode: keep,
            reset, or final (the run's JSON when it has one)."""
            stream = stream_view(session)
            if not numbers:
                return [stream.chat, stream.run_state, gr.skip(), stream.live, *[gr.skip()] * 10]
            view = numbers_view(session.transcript.ordered_steps())
            if provenance_mode == "keep":
                pick, prov, pos = gr.Dropdown(choices=view.step_choices), gr.skip(), gr.skip()
            else:
                value = view.step_choices[-1] if provenance_mode == "final" and view.step_choices else None
                pick = gr.Dropdown(choices=view.step_choices, value=value)
                prov, positions = provenance_view(session, value)
                pos = plot(positions)
            exported = gr.skip() if export_mode == "keep" else \
                gr.DownloadButton(value=session.export_path, interactive=bool(session.export_path))
            return [stream.chat, stream.run_state, view.summary, stream.live, view.table, plot(view.latency),
                    plot(view.cumulative), view.cumulative_note, plot(view.content_plot), view.content_table, pick,
                    prov, pos, exported]

        def admit(text: str, request: gr.Request) -> str:
            text = text or ""
            if not text.strip():
                gr.Warning("Type a task first (the task box is empty).")
                raise gr.Error("empty task", visible=False)
            problem = check_task(text)  # the agent's own verdict, before anything is queued or generated
            if problem is not None:
                raise gr.Error(problem, title="Task refused")
            session = sessions.get(request.session_hash)
            try:
                ahead = sessions.admit(session, settings.max_queue)
            except ValueError as e:
                raise gr.Error(str(e), title="Busy") from None
            session.state, session.tone = queue_state(ahead, settings.zero_gpu), "busy"
            return run_state_html(session.state, session.tone)

        def run(text, mode_v, thinking_v, k_v, max_new_v, temp_v, steps_v, request: gr.Request):
            session = sessions.get(request.session_hash)
            if not session.claim_queued():  # Stop or New run gave up this queued run before it started
                yield outputs(session)
                return
            try:
                config = AgentConfig(mode=mode_v, max_steps=int(steps_v), settings=GenerationSettings(
                    max_new_tokens=int(max_new_v), draft_tokens=int(k_v), temperature=float(temp_v),
                    enable_thinking=bool(thinking_v)))
            except ValueError as e:  # InputError included
                session.finish()
                session.fail(f"Settings rejected: {e}")
                yield outputs(session)
                return
            job = session.begin(text, config)
            if settings.zero_gpu:
                session.state = "Waiting for a ZeroGPU GPU (the Space borrows one per run)…"
            try:
                yield outputs(session, True, "reset", "reset")
            except GeneratorExit:  # cancelled before the run began
                session.finish()
                raise
            try:
                release = holder.lease()
            except ModelError as e:
                session.fail(str(e))
                session.finish()
                yield outputs(session, True, "final", "final")
                return
            with contextlib.closing(drive(session, gpu_run(job), environment=environment, release=release)) as steps:
                for numbers_changed in steps:
                    if session.engine_info and "describe_error" not in session.engine_info:
                        holder.info = session.engine_info
                    yield outputs(session, numbers_changed)
            yield outputs(session, True, "final", "final")

        def request_stop(request: gr.Request) -> str:
            session = sessions.get(request.session_hash)
            if not session.give_up_queued() and session.phase == "running":
                session.request_stop()
            return run_state_html(session.state, session.tone)

        def await_idle(session: Session) -> None:
            """A cancelled run finishes in the background (ui.driver): wait for it, bounded."""
            deadline = time.monotonic() + STOP_WAIT_S
            while session.phase == "running" and time.monotonic() < deadline:
                time.sleep(0.05)

        def redraw_after_stop(request: gr.Request) -> list[Any]:
            session = sessions.get(request.session_hash)
            await_idle(session)
            return outputs(session, True, "final", "final")

        def new_conversation(request: gr.Request) -> list[Any]:
            session = sessions.get(request.session_hash)
            await_idle(session)
            session.reset()
            session.state = "New conversation: no run yet. The next task starts fresh, in an empty workspace."
            return outputs(session, True, "reset", "reset")

        run_events = []
        # admit is queued (so its warnings reach the page) but never waits; the run waits for the one GPU.
        for trigger in (ui.run_btn.click, ui.task.submit):
            admitted = trigger(admit, [ui.task], [ui.run_state], concurrency_limit=None, show_progress="hidden")
            run_events.append(admitted.success(
                run, [ui.task, ui.mode, ui.thinking, ui.k, ui.max_new, ui.temperature, ui.max_steps], run_outputs,
                concurrency_limit=1, concurrency_id="gpu", show_progress="hidden"))
            admitted.success(lambda: "", None, [ui.task], queue=False, show_progress="hidden")  # ready for a follow-up
        # Stop, New run and the chat's Clear: the stop flag (which a forked ZeroGPU worker sees too) and
        # Gradio's own cancellation of the run event, then the final state drawn from the server's session.
        (ui.stop_btn.click(request_stop, None, [ui.run_state], queue=False, cancels=run_events, show_progress="hidden")
         .then(redraw_after_stop, None, run_outputs, queue=False, show_progress="hidden"))
        for trigger in (ui.new_btn.click, ui.chat.clear):
            (trigger(request_stop, None, [ui.run_state], queue=False, cancels=run_events, show_progress="hidden")
             .then(new_conversation, None, run_outputs, queue=False, show_progress="hidden"))

        def show_provenance(label: str | None, request: gr.Request) -> tuple[str, Any]:
            html, positions = provenance_view(sessions.get(request.session_hash), label)
            return html, plot(positions)

        ui.step_pick.input(show_provenance, [ui.step_pick], [ui.provenance, ui.position], queue=False,
                           show_progress="hidden")

        def switch_model(model: str, drafter: str) -> str:
            if not settings.allow_model_switch:  # the page hides the control; an API caller gets the same answer
                gr.Warning("Model switching is off on this server (owner setting PLAYGROUND_ALLOW_MODEL_SWITCH).")
            elif not (model or "").strip():
                gr.Warning("Pick a preset or type a Hub id.")
            elif not holder.switch(model.strip(), (drafter or "").strip() or None):
                gr.Warning("A model is already loading; wait for it to finish.")
            return holder.status()

        ui.load_btn.click(switch_model, [ui.model_box, ui.drafter_box], [ui.model_status], concurrency_limit=None)

        def tick(request: gr.Request) -> tuple[str, Any]:
            session = sessions.peek(request.session_hash)
            if session is None or session.phase != "queued":
                return holder.status(), gr.skip()
            session.state = queue_state(sessions.ahead_of(session), settings.zero_gpu)
            return holder.status(), run_state_html(session.state, session.tone)

        gr.Timer(1.0).tick(tick, None, [ui.model_status, ui.run_state], queue=False, show_progress="hidden")

        def end_session(request: gr.Request) -> None:
            sessions.end(request.session_hash)

        demo.unload(end_session)
    demo.queue(max_size=settings.max_queue + 4, default_concurrency_limit=4)
    return demo


# ---- start-up ----

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description="Gemma 4 MTP drafter playground.")
    p.add_argument("--model", default=env("PLAYGROUND_MODEL"), help="preset (%s) or Hub id; env PLAYGROUND_MODEL"
                   % ", ".join(PRESETS))
    p.add_argument("--drafter", default=env("PLAYGROUND_DRAFTER"), help="drafter Hub id; env PLAYGROUND_DRAFTER")
    p.add_argument("--engine", choices=ENGINES, default=env("PLAYGROUND_ENGINE") or "fast",
                   help="decode loop: fast (ours) or transformers (the reference); env PLAYGROUND_ENGINE")
    p.add_argument("--dtype", choices=list(DTYPES), default=env("PLAYGROUND_DTYPE"),
                   help="weights dtype (default: bf16 on a GPU, fp32 on a CPU); env PLAYGROUND_DTYPE")
    p.add_argument("--host", default=env("GRADIO_SERVER_NAME") or env("HOST") or "127.0.0.1")
    p.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT") or env("PORT") or 7860))
    p.add_argument("--share", action="store_true", help="open a public gradio.live link")
    return p.parse_args(argv)


def isolation_text(probe: Any, sandbox) -> str:
    lines = [f"Sandbox: {'available' if sandbox.available else 'UNAVAILABLE'} - {sandbox.reason}"]
    lines.append(probe.summary() if hasattr(probe, "summary") else str(probe))
    return "\n".join(lines)


def sandbox_banner(sandbox, allow_unsandboxed: bool) -> str:
    if not sandbox.available:
        return ('<div class="banner banner-warn"><b>Code-running tools are disabled:</b> '
                f"{escape_html(sandbox.reason)}. A local user may opt out with "
                "<code>PLAYGROUND_ALLOW_UNSANDBOXED=1</code>.</div>")
    if allow_unsandboxed and "unisolated" in sandbox.reason.lower():
        return ('<div class="banner banner-warn"><b>Running model-written code without isolation</b> '
                f"(PLAYGROUND_ALLOW_UNSANDBOXED=1): {escape_html(sandbox.reason)}</div>")
    return ""


def stand_in_of(model: str) -> str | None:
    """The preset's own sentence for an offline stand-in (Preset.stand_in), plus where Gemma 4 runs."""
    preset = PRESETS.get((model or "").strip().lower())
    if preset is None or not preset.stand_in:
        return None
    hint = "" if cuda_available() else " (no GPU here: on a GPU machine, python app.py --model e2b runs Gemma 4)"
    return preset.stand_in.rstrip(".") + hint


def engine_loader(args: argparse.Namespace, settings: ServerSettings, token: str | None) -> Callable[..., Any]:
    """load_engine with the server's options: engine, dtype, no CUDA graphs on ZeroGPU, the prompt bound."""
    def load(name: str, drafter: str | None, on_progress) -> Any:
        return load_engine(name, drafter, token=token, on_progress=on_progress, engine=args.engine, dtype=args.dtype,
                           cuda_graphs=False if settings.zero_gpu else None,
                           max_prompt_tokens=settings.max_prompt_tokens)
    return load


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        settings = ServerSettings.from_env(os.environ)
    except ValueError as e:
        raise SystemExit(f"app.py: {e}") from None
    token = os.environ.pop("HF_TOKEN", None) or None  # read once; kept out of children's environments
    harden_server_process()
    probe = probe_isolation()
    sandbox = open_sandbox(allow_unisolated=settings.allow_unsandboxed, probe=probe)
    isolation = isolation_text(probe, sandbox)
    log.info("isolation probe:\n%s", isolation)
    model = args.model or default_model()
    holder = ModelHolder(engine_loader(args, settings, token), stand_in=stand_in_of, preflight=functools.partial(
        preflight, token=token, bytes_per_param=4 if args.dtype == "fp32" else 2))
    SERVED.engine, SERVED.budget = (lambda: holder.engine), settings.gpu
    SERVED.sandbox = sandbox if sandbox.available else None
    if settings.zero_gpu:  # ZeroGPU's CUDA emulation lives on the main thread: load here, before launch
        holder.load_now(model, args.drafter)
    else:
        holder.load(model, args.drafter)
    defaults = {"model": model, "drafter": args.drafter, "max_new_tokens": settings.max_new_tokens,
                "draft_tokens": settings.draft_tokens or draft_tokens_for(model), "max_steps": settings.max_steps}
    environment = {"sandbox": sandbox.reason, "isolation": isolation, "engine_option": args.engine,
                   "zero_gpu": settings.zero_gpu, "max_prompt_tokens": settings.max_prompt_tokens}
    sessions = Sessions(make_workspace, remove_workspace)
    demo = build_page(holder, sessions, settings, gpu_function(settings),
                      banners=sandbox_banner(sandbox, settings.allow_unsandboxed), isolation=isolation,
                      defaults=defaults, environment=environment)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, show_error=False,
                css_paths=[ASSETS / "style.css"], theme=gr.themes.Soft(), footer_links=[])


if __name__ == "__main__":
    main()
