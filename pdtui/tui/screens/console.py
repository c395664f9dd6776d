"""The prompt console: completions and chat through the proxy, with TTFT and tokens/s."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, Input, Select, Static, Switch, TextArea

from pdtui.console import (
    Request,
    Result,
    explain,
    health_report,
    http_client,
    load_test,
    precheck,
    proxy_endpoint,
    reach,
    scrub,
    send,
)
from pdtui.settings import config_dir
from pdtui.tui.safe import printable
from pdtui.tui.screens.base import ModeBar, ModeScreen
from pdtui.tui.screens.dialogs import PickScreen, TableScreen, TextScreen

__all__ = ["ConsoleScreen", "PickScreen", "append_history", "history_path", "load_history"]

PRESETS: list[tuple[str, dict[str, Any]]] = [
    (
        "Runbook verification (the runbook's curl)",
        {"kind": "completion", "prompt": "Who are you?", "max_tokens": 100, "temperature": 0.0},
    ),
    (
        "Chat: hello",
        {
            "kind": "chat",
            "prompt": "Hello! Introduce yourself in two sentences.",
            "max_tokens": 64,
            "temperature": 0.0,
        },
    ),
    (
        "Long answer (500 tokens)",
        {
            "kind": "completion",
            "prompt": "Write a long story about a distributed cluster.",
            "max_tokens": 500,
            "temperature": 0.7,
        },
    ),
]
HISTORY_LIMIT = 200


def history_path() -> Path:
    return config_dir() / "console_history.jsonl"


def load_history() -> list[dict[str, Any]]:
    try:
        lines = history_path().read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines[-HISTORY_LIMIT:]:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("prompt"), str):
            out.append(item)
    return out


def append_history(item: dict[str, Any]) -> None:
    path = history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(item) + "\n")


class ConsoleScreen(ModeScreen):
    """Send prompts through the proxy and watch the answer stream in."""

    MODE = "console"
    HELP = (
        "An OpenAI-compatible console on the cluster's proxy (reached over SSH through the "
        "proxy's node, so it works when only the cluster network sees the proxy). ctrl+j (or "
        "ctrl+enter) sends the prompt, esc cancels the request at once; the answer streams in "
        "and follows while the view is at the bottom. The status line shows time to first "
        "token, tokens/s (from the server's usage, not from chunks), the token counts and the "
        "HTTP status; an error shows the status and the raw body, and an empty 200 (how older "
        "proxies hide a failed decoder) is an error. ctrl+r recalls a past prompt, ctrl+o "
        "picks a preset (the runbook's verification request first), ctrl+y shows the request "
        "as curl, ctrl+e the raw SSE events, ctrl+t runs a small load test (20 requests, 5 at "
        "once: p50/p90 TTFT and TPOT), ctrl+k asks the proxy's /healthcheck and every "
        "backend's /health and /v1/models directly (the proxy's own check does not probe "
        "them) and then checks that prompt + max_tokens fit max_model_len before each send. "
        "With PDTUI_API_KEY (else OPENAI_API_KEY) in pdtui's environment every request sends "
        "Authorization: Bearer <key>; the key is masked everywhere (curl shows $PDTUI_API_KEY)."
    )
    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("ctrl+j", "send", "Send", priority=True, id="console-send"),
        Binding("ctrl+enter", "send", "Send", priority=True, show=False, id="console-send-enter"),
        Binding("escape", "cancel", "Cancel", id="console-cancel"),
        Binding("ctrl+r", "history", "History", priority=True, id="console-history"),
        Binding("ctrl+o", "presets", "Presets", priority=True, id="console-presets"),
        Binding("ctrl+y", "curl", "curl", priority=True, id="console-curl"),
        Binding("ctrl+e", "raw", "Raw SSE", priority=True, id="console-raw"),
        Binding("ctrl+t", "load", "Load test", priority=True, id="console-load"),
        Binding("ctrl+k", "health", "Health", priority=True, id="console-health"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.last: Result | None = None
        self.last_request: Request | None = None
        self.sending = False
        self.answer = ""
        self.max_model_len: int | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar(self.MODE)
        yield Static("", id="console-target")
        if self.cluster is None:
            with VerticalScroll(id="body"):
                yield self.no_cluster()
        else:
            with Horizontal(id="console-params"):
                yield Select(
                    [("completion", "completion"), ("chat", "chat")],
                    value="completion",
                    allow_blank=False,
                    id="console-kind",
                )
                yield Static(" max_tokens", classes="param-label")
                yield Input("100", id="console-max-tokens", type="integer")
                yield Static(" temperature", classes="param-label")
                yield Input("0", id="console-temperature", type="number")
                yield Static(" stream", classes="param-label")
                yield Switch(value=True, id="console-stream")
            yield TextArea("Who are you?", id="console-prompt")
            with VerticalScroll(id="console-output"):
                yield Static("", id="console-answer")
            yield Static("", id="console-status")
        yield Footer()

    def on_mount(self) -> None:
        c = self.cluster
        if c is None:
            return
        if c.spec.proxy is None:
            target = "this cluster file defines no [proxy]"
        else:
            node, host, port = proxy_endpoint(c)
            target = (
                f"→ proxy {host}:{port} over SSH through {node.name} · model "
                f"{c.spec.model.served_name}"
            )
        self.query_one("#console-target", Static).update(target)
        self.query_one("#console-prompt", TextArea).focus()

    # -- the request ------------------------------------------------------------------

    def current_request(self) -> Request | None:
        c = self.cluster
        if c is None:
            return None
        try:
            max_tokens = int(self.query_one("#console-max-tokens", Input).value or "100")
            temperature = float(self.query_one("#console-temperature", Input).value or "0")
        except ValueError:
            self.notify(
                "max_tokens must be a whole number and temperature a number", severity="error"
            )
            return None
        kind = str(self.query_one("#console-kind", Select).value)
        return Request(
            "chat" if kind == "chat" else "completion",
            self.query_one("#console-prompt", TextArea).text,
            c.spec.model.served_name,
            max_tokens=max_tokens,
            temperature=temperature,
            stream=self.query_one("#console-stream", Switch).value,
        )

    def apply(self, item: dict[str, Any]) -> None:
        self.query_one("#console-kind", Select).value = (
            "chat" if item.get("kind") == "chat" else "completion"
        )
        self.query_one("#console-prompt", TextArea).text = str(item.get("prompt", ""))
        self.query_one("#console-max-tokens", Input).value = str(item.get("max_tokens", 100))
        self.query_one("#console-temperature", Input).value = str(item.get("temperature", 0))

    # -- output -----------------------------------------------------------------------

    def _append(self, text: str) -> None:
        scroll = self.query_one("#console-output", VerticalScroll)
        follow = scroll.scroll_y >= scroll.max_scroll_y - 2
        self.answer += text
        self.query_one("#console-answer", Static).update(Text(printable(self.answer)))
        if follow:
            self.call_after_refresh(scroll.scroll_end, animate=False)

    def _status(self, text: str | Text) -> None:
        self.query_one("#console-status", Static).update(text)

    def _show_result(self, res: Result, why: str | None = None) -> None:
        style = self.app.get_css_variables().get("success" if res.ok else "error", "")
        line = Text(res.status_line(), style=style)
        if why:
            line.append(printable(f"\n{why}"))
        if res.error and not (why and res.status is None):
            line.append(printable(f"\n{res.error}"))
            if res.body and res.body not in res.error:
                line.append(printable(f"\n{res.body[:2000]}"), style="dim")
        self._status(line)

    # -- actions ----------------------------------------------------------------------

    def action_send(self) -> None:
        req = self.current_request()
        if req is None or not req.prompt.strip():
            return
        problem = precheck(req, self.max_model_len)
        if problem:
            self.notify(problem, severity="error", timeout=15)
            return
        self.answer = ""
        self.query_one("#console-answer", Static).update("")
        self._status("sending…")
        append_history(
            {
                "kind": req.kind,
                "prompt": scrub(req.prompt, shapes=False),
                "max_tokens": req.max_tokens,
                "temperature": req.temperature,
                "at": time.time(),
            }
        )
        self.send_request(req)

    def action_cancel(self) -> None:
        if self.sending:
            self.workers.cancel_group(self, "console-send")
            self.sending = False
            self._status("cancelled")

    def action_history(self) -> None:
        items = list(reversed(load_history()))
        if not items:
            self.notify("no history yet")
            return

        def picked(index: int | None) -> None:
            if index is not None:
                self.apply(items[index])

        self.app.push_screen(
            PickScreen("Past prompts", [f"{i['kind']:<10} {i['prompt'][:80]!r}" for i in items]),
            picked,
        )

    def action_presets(self) -> None:
        def picked(index: int | None) -> None:
            if index is not None:
                self.apply(PRESETS[index][1])

        self.app.push_screen(PickScreen("Presets", [name for name, _ in PRESETS]), picked)

    def action_curl(self) -> None:
        req = self.current_request()
        c = self.cluster
        if req is None or c is None or c.spec.proxy is None:
            return
        text = req.curl(f"http://{c.spec.proxy.host}:{c.spec.proxy.port}")
        self.app.copy_to_clipboard(text)
        self.app.push_screen(
            TextScreen("As curl (copied to the clipboard where the terminal allows it)", text)
        )

    def action_raw(self) -> None:
        if self.last is None:
            self.notify("send a request first")
            return
        raw = "\n".join(self.last.raw_events) or self.last.body or "(no body)"
        self.app.push_screen(TextScreen("Raw response (SSE data lines)", printable(raw)))

    def action_health(self) -> None:
        if not self.sending:
            self.run_health()

    def action_load(self) -> None:
        req = self.current_request()
        if req is not None and not self.sending:
            self.run_load(req)

    # -- workers ----------------------------------------------------------------------

    @work(group="console-send", exclusive=True, exit_on_error=False, name="prompt")
    async def send_request(self, req: Request) -> None:
        pool, cluster = await self.session()
        self.sending = True
        self.last_request = req
        try:
            async with reach(pool, cluster) as base, http_client(600) as client:
                res = await send(client, base, req, on_text=self._append)
        finally:
            self.sending = False
        self.last = res
        if not res.text and self.answer == "" and res.ok:
            self._append("(empty answer)")
        why = None
        if not res.ok and (res.status is None or res.status >= 500):
            self._status("no answer; asking the proxy and every backend why…")
            why = explain(res, await health_report(pool, cluster))
            if why == "the proxy is not running":
                why += " (start it in Launch, F5)"
        self._show_result(res, why)

    @work(group="console-health", exclusive=True, exit_on_error=False, name="health")
    async def run_health(self) -> None:
        """The proxy's /healthcheck and every backend's /health and /v1/models, directly."""
        pool, cluster = await self.session()
        self._status("asking the proxy and every backend…")
        report = await health_report(pool, cluster)
        found = report.max_model_len
        if found is not None:
            self.max_model_len = (
                found if self.max_model_len is None else min(self.max_model_len, found)
            )
        rows = [tuple(printable(c) for c in row) for row in report.rows()]
        self._status(f"health: {len(rows)} answers; max_model_len {self.max_model_len}")
        self.app.push_screen(
            TableScreen(
                "Proxy and backends, asked directly", ("endpoint", "where", "state", "detail"), rows
            )
        )

    @work(group="console-send", exclusive=True, exit_on_error=False, name="load test")
    async def run_load(self, req: Request) -> None:
        pool, cluster = await self.session()
        self.sending = True
        self._status("load test: 20 requests, 5 at once…")
        try:
            async with reach(pool, cluster) as base, http_client(600) as client:
                rep = await load_test(client, base, req, 20, 5)
        finally:
            self.sending = False

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v * 1000:.0f} ms"

        self._status(
            f"load test: {rep.ok}/{rep.n} ok in {rep.seconds:.1f} s · TTFT p50 "
            f"{ms(rep.ttft_p50)} p90 {ms(rep.ttft_p90)} · TPOT p50 {ms(rep.tpot_p50)} p90 "
            f"{ms(rep.tpot_p90)} · {rep.tokens_per_s_total:.1f} tok/s in total"
            + (printable(f"\n{rep.error_samples[0]}") if rep.error_samples else "")
        )
