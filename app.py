"""Gradio playground: builds the page, wires it to the coding agent, launches. The only gradio importer.

Knows no tensors, chat templates or timing code: every number shown comes from the engine's stats via
agents.report. Run `python app.py --help` for the options and their environment equivalents.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from agents import AgentConfig, run_agent
from agents.events import StepStarted, TextDelta, ToolStarted
from agents.report import run_to_dict, run_totals, step_rows
from agents.sandbox import harden_server_process, make_workspace, open_sandbox, probe_isolation, remove_workspace
from inference import PRESETS, cuda_available, default_model, load_engine
from protocol import GenerationSettings, InputError, ModelError
from ui.render import (
    acceptance_html, chart_svg, escape_html, provenance_html, status_html, summary_html, table_frame,
)
from ui.transcript import Transcript

try:  # ZeroGPU Spaces: each run borrows the GPU for a bounded time. Elsewhere a no-op.
    import spaces

    gpu_task = spaces.GPU(duration=int(os.environ.get("PLAYGROUND_GPU_DURATION_S", "180")))
except ImportError:
    def gpu_task(fn):
        return fn

log = logging.getLogger("playground")
ASSETS = Path(__file__).resolve().parent / "assets"
REDRAW_INTERVAL_S = 0.125  # at most ~8 redraws a second while text streams
MAX_WAITING_RUNS = int(os.environ.get("PLAYGROUND_MAX_QUEUE", "8"))
BUSY_MESSAGE = ("The GPU is busy: {n} runs are already running or waiting. Please try again in a minute.")


# ---- the model: loaded in the background so the page is up while weights download ----

class ModelHolder:
    """One engine for the server, loaded in a thread; a switch frees the old engine first."""

    def __init__(self, token: str | None) -> None:
        self._token = token  # read once from HF_TOKEN; never shown or logged
        self._lock = threading.Lock()
        self.run_lock = threading.Lock()  # held by a run; a switch waits for it before closing the engine
        self.engine = None
        self.phase, self.model, self.message, self.fraction = "idle", "", "No model loaded yet.", None

    def load(self, model: str, drafter: str | None) -> bool:
        """Start loading in the background; False when a load is already under way."""
        with self._lock:
            if self.phase == "loading":
                return False
            self.phase, self.model, self.message, self.fraction = "loading", model, "Starting…", 0.0
        threading.Thread(target=self._load, args=(model, drafter), daemon=True, name="model-load").start()
        return True

    def _progress(self, message: str, fraction: float | None) -> None:
        self.message, self.fraction = message, fraction

    def _load(self, model: str, drafter: str | None) -> None:
        with self.run_lock:
            old, self.engine = self.engine, None
        if old is not None:
            self._progress("Freeing the previous model…", None)
            old.close()
        try:
            engine = load_engine(model, drafter, token=self._token, on_progress=self._progress)
        except ModelError as e:
            self.phase, self.message = "failed", str(e)
        except Exception as e:  # noqa: BLE001 - a load failure must reach the page, not kill the server
            log.exception("model load failed")
            self.phase, self.message = "failed", f"{type(e).__name__}: {e}"
        else:
            drafter_note = f"drafter {engine.drafter_id}" if engine.drafter_id else "no drafter"
            self.engine, self.phase, self.fraction = engine, "ready", 1.0
            self.message = f"Target {engine.model_id}, {drafter_note}."
            log.info("model ready: %s (drafter %s)", engine.model_id, engine.drafter_id)

    def status(self) -> str:
        return status_html(self.phase, self.model, self.message, self.fraction)


# ---- per-browser-session state ----

@dataclass
class Session:
    workspace: Path
    export_dir: Path
    stop: threading.Event = field(default_factory=threading.Event)
    transcript: Transcript | None = None
    config: AgentConfig | None = None
    waiting: bool = False  # admitted to the queue, not finished
    running: bool = False
    closed: bool = False
    fresh_workspace: bool = False

    def clean_up(self) -> None:
        remove_workspace(self.workspace)
        shutil.rmtree(self.export_dir, ignore_errors=True)


class Sessions:
    """Session state keyed by Gradio's session hash; removed (with its workspace) when the tab closes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_hash: dict[str, Session] = {}

    def get(self, request: gr.Request) -> Session:
        with self._lock:
            session = self._by_hash.get(request.session_hash)
            if session is None:
                session = Session(make_workspace(), Path(tempfile.mkdtemp(prefix="playground-export-")))
                self._by_hash[request.session_hash] = session
            return session

    def waiting_count(self) -> int:
        with self._lock:
            return sum(s.waiting for s in self._by_hash.values())

    def end(self, request: gr.Request) -> None:
        with self._lock:
            session = self._by_hash.pop(request.session_hash, None)
        if session is None:
            return
        session.closed = True
        session.stop.set()
        if not session.running:  # a running session cleans up when its run returns
            session.clean_up()


# ---- handlers ----

def build_page(holder: ModelHolder, sandbox, isolation_summary: str, banners: str, defaults: dict) -> gr.Blocks:
    sessions = Sessions()
    examples = json.loads((ASSETS / "examples.json").read_text())

    with gr.Blocks(title="Gemma 4 MTP drafter playground") as demo:
        gr.Markdown("# ⚡ Gemma 4 MTP drafter playground\nA coding agent works on your task; every reasoning "
                    "step runs on the target model **with and without** its multi-token-prediction drafter, "
                    "on the identical prompt, so you see what the drafter buys.")
        gr.HTML(banners, elem_id="banners")
        model_status = gr.HTML(holder.status(), elem_id="model-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                chat = gr.Chatbot(label="Agent", height=560, elem_id="chat", buttons=["copy"],
                                  feedback_options=None, placeholder="Pick an example or type a coding task below.")
                task = gr.Textbox(label="Task", lines=3, max_lines=12, elem_id="task",
                                  placeholder="e.g. Write and run a function that …")
                with gr.Row():
                    run_btn = gr.Button("Run", variant="primary", elem_id="run-btn")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                    new_btn = gr.Button("New run", elem_id="new-btn")
                gr.Examples([[e["task"]] for e in examples], inputs=[task], label="Example tasks",
                            example_labels=[e["title"] for e in examples], examples_per_page=8)
                with gr.Accordion("Settings", open=False):
                    with gr.Row():
                        model_box = gr.Dropdown(list(PRESETS), value=defaults["model"], label="Model (preset or Hub id)",
                                                allow_custom_value=True)
                        drafter_box = gr.Textbox(defaults["drafter"] or "", label="Drafter id (blank: the preset's)")
                        load_btn = gr.Button("Load model")
                    with gr.Row():
                        mode = gr.Radio(["compare", "drafter", "baseline"], value="compare", label="Mode")
                        thinking = gr.Checkbox(False, label="Thinking")
                    with gr.Row():
                        k = gr.Slider(1, 16, value=defaults["draft_tokens"], step=1, label="Draft length k")
                        max_new = gr.Slider(16, 4096, value=defaults["max_new_tokens"], step=16, label="Max new tokens",
                                            elem_id="max-new")
                        temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.05, label="Temperature (0 = greedy)")
                        max_steps = gr.Slider(1, 24, value=defaults["max_steps"], step=1, label="Max agent steps")
            with gr.Column(scale=1):
                run_state = gr.HTML('<div class="run-state">No run yet.</div>', elem_id="run-state")
                summary = gr.HTML(summary_html(None), elem_id="summary")
                chart = gr.HTML(chart_svg([]), elem_id="chart")
                table = gr.Dataframe(table_frame([]), label="Per step (server-measured)", elem_id="step-table",
                                     interactive=False, wrap=False)
                with gr.Accordion("Token provenance", open=True):
                    step_pick = gr.Dropdown([], label="Step", elem_id="step-pick", interactive=True)
                    provenance = gr.HTML('<div class="prov-note">Pick a finished step.</div>', elem_id="provenance")
                export = gr.DownloadButton("Export run as JSON", interactive=False, elem_id="export")
        with gr.Accordion("Sandbox and isolation probe", open=False):
            gr.HTML(f'<div class="isolation"><pre>{escape_html(isolation_summary)}</pre></div>')

        def outputs_for(session: Session, state: str, final: bool = False) -> tuple:
            transcript = session.transcript
            steps = transcript.ordered_steps() if transcript else []
            rows = step_rows(steps)
            choices = [f"Step {s.index}" for s in steps]
            pick = gr.Dropdown(choices=choices, value=choices[-1] if final and choices else None) if final else \
                gr.Dropdown(choices=choices)
            return (transcript.messages if transcript else [], f'<div class="run-state">{state}</div>',
                    summary_html(run_totals(steps) if steps else None), chart_svg(rows), table_frame(rows), pick)

        def admit(text: str, request: gr.Request) -> None:
            if not (text or "").strip():
                gr.Warning("Type a task first (the task box is empty).")
                raise gr.Error("empty task", visible=False)
            session = sessions.get(request)
            if session.waiting:
                raise gr.Error("A run of yours is already going: press Stop or wait for it.", title="Busy")
            waiting = sessions.waiting_count()
            if waiting >= MAX_WAITING_RUNS:
                raise gr.Error(BUSY_MESSAGE.format(n=waiting), title="Busy")
            session.waiting = True

        @gpu_task
        def run(text, mode_v, thinking_v, k_v, max_new_v, temp_v, steps_v, request: gr.Request):
            session = sessions.get(request)
            try:
                yield from _run(session, text, mode_v, thinking_v, k_v, max_new_v, temp_v, steps_v)
            finally:
                session.waiting = session.running = False
                if session.closed:
                    session.clean_up()

        def _run(session, text, mode_v, thinking_v, k_v, max_new_v, temp_v, steps_v):
            session.stop.clear()
            session.transcript = transcript = Transcript(text)
            skip_export = gr.DownloadButton(interactive=False)
            try:
                config = AgentConfig(mode=mode_v, max_steps=int(steps_v), settings=GenerationSettings(
                    max_new_tokens=int(max_new_v), draft_tokens=int(k_v), temperature=float(temp_v),
                    enable_thinking=bool(thinking_v)))
            except ValueError as e:  # InputError included
                gr.Warning(str(e))
                transcript.add_error(str(e))
                yield *outputs_for(session, "Settings rejected."), skip_export
                return
            engine = holder.engine
            if engine is None:
                transcript.add_error(f"The model is not ready ({holder.phase}): {holder.message}")
                yield *outputs_for(session, "No model loaded."), skip_export
                return
            if session.fresh_workspace:
                remove_workspace(session.workspace)
                session.workspace, session.fresh_workspace = make_workspace(), False
            session.config, session.running = config, True
            yield *outputs_for(session, "Running…"), skip_export
            last_draw_s, state = 0.0, "Starting…"
            with holder.run_lock:
                try:
                    for event in run_agent(engine, text, config=config, workspace=session.workspace,
                                           sandbox=sandbox if sandbox.available else None,
                                           should_stop=session.stop.is_set):
                        transcript.apply(event)
                        if isinstance(event, StepStarted):
                            state = f"Step {event.index} running: the model is generating…"
                        elif isinstance(event, ToolStarted):
                            state = f"Step {event.index} running: tool {event.call.name}…"
                        now = time.monotonic()
                        if isinstance(event, TextDelta) and now - last_draw_s < REDRAW_INTERVAL_S:
                            continue
                        last_draw_s = now
                        if transcript.done is None:
                            yield *outputs_for(session, escape_html(state)), skip_export
                except InputError as e:
                    gr.Warning(str(e))
                    transcript.add_error(str(e))
                except ModelError as e:
                    transcript.add_error(f"Model error: {e}")
                except Exception as e:  # noqa: BLE001 - shown in the chat, never a traceback
                    log.exception("run failed")
                    transcript.add_error(f"Internal error ({type(e).__name__}): {e}")
            done = transcript.done
            if done is None:
                yield *outputs_for(session, "Run ended with an error.", final=True), skip_export
                return
            state = f"Run ended: <b>{escape_html(done.reason)}</b> after {len(done.steps)} step(s)."
            yield *outputs_for(session, state, final=True), gr.DownloadButton(
                value=write_export(session, engine), interactive=True)

        def write_export(session: Session, engine) -> str:
            environment = {**engine.describe(), "sandbox": sandbox.reason, "isolation": isolation_summary}
            data = run_to_dict(session.transcript.done, session.config, environment)
            path = session.export_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}.json"
            path.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str))
            return str(path)

        def stop(request: gr.Request) -> str:
            session = sessions.get(request)
            session.stop.set()
            if not session.running:  # admitted but never started (e.g. the queue refused it): let it run again
                session.waiting = False
            return '<div class="run-state">Stopping…</div>'

        def new_run(request: gr.Request) -> tuple:
            session = sessions.get(request)
            session.stop.set()
            session.waiting = session.waiting and session.running
            session.transcript, session.fresh_workspace = None, True
            return (*outputs_for(session, "No run yet."), gr.DownloadButton(value=None, interactive=False), "")

        def show_provenance(label: str | None, request: gr.Request) -> str:
            transcript = sessions.get(request).transcript
            if not label or transcript is None:
                return '<div class="prov-note">Pick a finished step.</div>'
            step = transcript.steps.get(int(label.split()[-1]))
            if step is None:
                return '<div class="prov-note">That step belongs to an earlier run.</div>'
            result = step.result
            drafter = result.stats.drafter
            return provenance_html(result.token_texts, result.provenance) + (
                acceptance_html(drafter.accepted_by_position) if drafter else "")

        def switch_model(model: str, drafter: str) -> str:
            if not (model or "").strip():
                gr.Warning("Pick a preset or type a Hub id.")
            elif not holder.load(model.strip(), drafter.strip() or None):
                gr.Warning("A model is already loading; wait for it to finish.")
            return holder.status()

        run_outputs = [chat, run_state, summary, chart, table, step_pick, export]
        inputs = [task, mode, thinking, k, max_new, temperature, max_steps]
        for trigger in (run_btn.click, task.submit):  # admit is queued (so warnings reach the page) but never waits
            trigger(admit, [task], None, concurrency_limit=None, show_progress="hidden").success(
                run, inputs, run_outputs, concurrency_limit=1, concurrency_id="gpu", show_progress="minimal")
        stop_btn.click(stop, None, [run_state], queue=False)
        new_btn.click(new_run, None, [*run_outputs, task], queue=False)
        step_pick.change(show_provenance, [step_pick], [provenance], queue=False)
        load_btn.click(switch_model, [model_box, drafter_box], [model_status], concurrency_limit=None)
        gr.Timer(1.0).tick(holder.status, None, [model_status], queue=False, show_progress="hidden")
        demo.unload(sessions.end)
    demo.queue(max_size=MAX_WAITING_RUNS + 4, default_concurrency_limit=4)
    return demo


# ---- start-up ----

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description="Gemma 4 MTP drafter playground.")
    p.add_argument("--model", default=env("PLAYGROUND_MODEL"), help="preset (%s) or Hub id; env PLAYGROUND_MODEL"
                   % ", ".join(PRESETS))
    p.add_argument("--drafter", default=env("PLAYGROUND_DRAFTER"), help="drafter Hub id; env PLAYGROUND_DRAFTER")
    p.add_argument("--host", default=env("GRADIO_SERVER_NAME") or env("HOST") or "127.0.0.1")
    p.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT") or env("PORT") or 7860))
    p.add_argument("--share", action="store_true", help="open a public gradio.live link")
    return p.parse_args(argv)


def isolation_text(probe: Any, sandbox) -> str:
    lines = [f"Sandbox: {'available' if sandbox.available else 'UNAVAILABLE'} - {sandbox.reason}"]
    lines.append(probe.summary() if hasattr(probe, "summary") else str(probe))
    return "\n".join(lines)


def banner_html(model: str, sandbox, allow_unsandboxed: bool) -> str:
    parts = []
    if model == "tiny" and not cuda_available():
        parts.append('<div class="banner banner-info"><b>No GPU found: running the offline <code>tiny</code> '
                     "stand-in</b> (random weights, CPU): its text is gibberish and its timings are not Gemma 4's. "
                     "On a GPU machine run <code>python app.py --model e2b</code> (or set "
                     "<code>PLAYGROUND_MODEL</code>), or pick a model under Settings.</div>")
    if not sandbox.available:
        parts.append('<div class="banner banner-warn"><b>Code-running tools are disabled:</b> '
                     f"{escape_html(sandbox.reason)}. A local user may opt out with "
                     "<code>PLAYGROUND_ALLOW_UNSANDBOXED=1</code>.</div>")
    elif allow_unsandboxed and "unisolated" in sandbox.reason.lower():
        parts.append('<div class="banner banner-warn"><b>Running model-written code without isolation</b> '
                     f"(PLAYGROUND_ALLOW_UNSANDBOXED=1): {escape_html(sandbox.reason)}</div>")
    return "".join(parts)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    token = os.environ.pop("HF_TOKEN", None) or None  # read once; kept out of children's environments
    harden_server_process()
    probe = probe_isolation()
    allow_unsandboxed = os.environ.get("PLAYGROUND_ALLOW_UNSANDBOXED", "") == "1"
    sandbox = open_sandbox(allow_unisolated=allow_unsandboxed, probe=probe)
    summary = isolation_text(probe, sandbox)
    log.info("isolation probe:\n%s", summary)
    model = args.model or default_model()
    holder = ModelHolder(token)
    holder.load(model, args.drafter)
    defaults = {"model": model, "drafter": args.drafter,
                "max_new_tokens": int(os.environ.get("PLAYGROUND_MAX_NEW_TOKENS", "512")),
                "draft_tokens": int(os.environ.get("PLAYGROUND_DRAFT_TOKENS", "6")),
                "max_steps": int(os.environ.get("PLAYGROUND_MAX_STEPS", "8"))}
    demo = build_page(holder, sandbox, summary, banner_html(model, sandbox, allow_unsandboxed), defaults)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, show_error=False,
                css_paths=[ASSETS / "style.css"], theme=gr.themes.Soft(), footer_links=[])


if __name__ == "__main__":
    main()
