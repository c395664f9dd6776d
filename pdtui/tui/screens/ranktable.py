"""The ranktable editor: generate from live data, edit, lint, save, push with per-node status."""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, Static

from pdtui.files import atomic_write, read_text
from pdtui.npu.health import sweep
from pdtui.npu.model import NodeHealth
from pdtui.ranktable import Finding, RanktableError, dumps, generate, lint, loads, summary_diff
from pdtui.ranktable.sync import NodeCopy, fetch_all, instance_nodes, push, restate
from pdtui.text import count
from pdtui.tui.screens.base import ModeBar, ModeScreen
from pdtui.tui.screens.dialogs import ConfirmScreen, TextScreen
from pdtui.tui.screens.edit_cell import EditCellScreen, validate_value

__all__ = ["ConfirmScreen", "EditCellScreen", "RanktableScreen", "TextScreen", "validate_value"]

LISTS = ("prefill_device_list", "decode_device_list")
FIELDS = ("server_id", "device_id", "device_ip", "super_pod_id", "super_device_id", "cluster_id")


def default_file(cluster_path: Path | None, name: str) -> Path:
    base = cluster_path.resolve().parent if cluster_path else Path.cwd()
    stem = cluster_path.stem if cluster_path else name
    return base / f"{stem}.ranktable.json"


def _row(
    entry: object, index: int, marks: Mapping[tuple[int | None, str | None], str]
) -> list[str | Text]:
    """One device's cells, marked red (error) or yellow (warning) where lint found a problem
    in the cell or in the whole entry."""
    row: list[str | Text] = []
    for fld in FIELDS:
        value = entry.get(fld, "") if isinstance(entry, dict) else ""
        sev = marks.get((index, fld)) or marks.get((index, None))
        style = {"error": "bold red", "warning": "yellow"}.get(sev or "", "")
        row.append(Text("" if value is None else str(value), style=style))
    return row


def _copy_lines(node_copy: NodeCopy, rt: dict[str, Any]) -> list[str]:
    """A node's copy for the push question: its state and, when different, what changes."""
    error = f" ({node_copy.error})" if node_copy.error else ""
    lines = [f"{node_copy.node}: {node_copy.state}{error}"]
    if node_copy.state == "different" and node_copy.text is not None:
        try:
            lines += [f"    {d}" for d in summary_diff(loads(node_copy.text), rt)[:20]]
        except RanktableError as exc:
            lines.append(f"    their copy is not valid JSON: {exc}")
    return lines


class RanktableScreen(ModeScreen):
    """Prefill and decode device lists as tables, lint findings, node copies."""

    MODE = "ranktable"
    HELP = (
        "The LLMDataDist ranktable, built the way gen_ranktable.py builds it but from the "
        "hccn_tool/npu-smi data pdtui collects over SSH (no torchrun, no node that must run it "
        "at the same time). g generates from the live nodes; e edits the cell (checked as you "
        "type); a adds a device after the cursor, x removes it, [ and ] move it (cluster_id "
        "is renumbered); l lints against the cluster and the live nodes; selecting a finding "
        "jumps to its cell; v previews the JSON; s saves (atomic, previous copy kept as .bak); "
        "p pushes to every node that runs an instance after showing what changes; c compares "
        "every node's copy."
    )
    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("g", "generate", "Generate", id="rt-generate"),
        Binding("e", "edit", "Edit", id="rt-edit"),
        Binding("a", "add", "Add", id="rt-add"),
        Binding("x", "remove", "Remove", id="rt-remove"),
        Binding("left_square_bracket", "move(-1)", "Up", id="rt-up", show=False),
        Binding("right_square_bracket", "move(1)", "Down", id="rt-down", show=False),
        Binding("l", "lint", "Lint", id="rt-lint"),
        Binding("v", "preview", "JSON", id="rt-preview"),
        Binding("s", "save", "Save", id="rt-save"),
        Binding("p", "push", "Push", id="rt-push"),
        Binding("c", "compare", "Compare", id="rt-compare"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rt: dict[str, Any] | None = None
        self.saved_text: str | None = None
        self.findings: list[Finding] = []
        self.copies: list[NodeCopy] = []
        self.live: dict[str, NodeHealth] | None = None
        self.busy = ""
        self.path: Path | None = None

    # -- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar(self.MODE)
        yield Static("", id="rt-status")
        if self.cluster is None or self.cluster.spec.ranktable is None:
            with VerticalScroll(id="body"):
                if self.cluster is None:
                    yield self.no_cluster()
                else:
                    yield Static(
                        "This cluster file has no [ranktable] section: its connector "
                        f"({self._connectors()}) does not read a ranktable. Add one (path, "
                        "prefill_device_count, decode_device_count) for LLMDataDistCMgrConnector.",
                        classes="placeholder",
                    )
        else:
            with Vertical(id="rt-tables"):
                for name in LISTS:
                    yield Label(name, id=f"{name}-label", classes="section")
                    table: DataTable[str | Text] = DataTable(
                        id=name, cursor_type="cell", zebra_stripes=True
                    )
                    for f in FIELDS:
                        table.add_column(f, key=f)
                    yield table
            yield Label("lint", classes="section")
            findings: DataTable[str | Text] = DataTable(id="rt-findings", cursor_type="row")
            findings.add_columns("", "where", "finding", "fix")
            yield findings
        yield Footer()

    def _connectors(self) -> str:
        assert self.cluster is not None
        names = {str(i.kv_transfer.get("kv_connector", "?")) for i in self.cluster.instances}
        return ", ".join(sorted(names)) or "none"

    def on_mount(self) -> None:
        c = self.cluster
        if c is None or c.spec.ranktable is None:
            return
        self.path = default_file(c.path, c.name)
        if self.path.exists():
            try:
                text = read_text(self.path)
                self.rt = loads(text, source=self.path.name)
                self.saved_text = text
            except (OSError, UnicodeDecodeError, RanktableError) as exc:
                self.notify(f"{self.path}: {exc}", severity="error", timeout=15)
        self._relint()
        self._show()

    # -- rendering --------------------------------------------------------------------

    @property
    def modified(self) -> bool:
        return self.rt is not None and (
            self.saved_text is None or json.loads(self.saved_text) != self.rt
        )

    def _show(self) -> None:
        if self.cluster is None or self.cluster.spec.ranktable is None:
            return
        for name in LISTS:
            table = self.query_one(f"#{name}", DataTable)
            keep = table.cursor_coordinate
            table.clear()
            entries = (self.rt or {}).get(name, [])
            marks = {(f.index, f.field): f.severity for f in self.findings if f.list == name}
            for i, entry in enumerate(entries if isinstance(entries, list) else []):
                table.add_row(*_row(entry, i, marks), key=f"{name}:{i}")
            if table.row_count:
                table.cursor_coordinate = table.validate_cursor_coordinate(keep)
            self.query_one(f"#{name}-label", Label).update(
                f"{name} ({count(table.row_count, 'device')})"
            )
        ft = self.query_one("#rt-findings", DataTable)
        ft.clear()
        for i, finding in enumerate(self.findings):
            error = finding.severity == "error"
            mark = Text("✗" if error else "!", style="bold red" if error else "yellow")
            ft.add_row(mark, finding.location, finding.message, finding.fix, key=str(i))
        self._render_status()

    def _render_status(self) -> None:
        if self.cluster is None or self.cluster.spec.ranktable is None:
            return
        bits = [self.busy] if self.busy else []
        if self.rt is None:
            bits.append("no ranktable yet: g generates one from the live nodes")
        else:
            state = "modified" if self.modified else "saved"
            bits.append(f"{self.path} ({state})")
            errors = sum(1 for f in self.findings if f.severity == "error")
            bits.append(f"lint: {errors} errors, {len(self.findings) - errors} warnings")
        marks = {"same": "✓", "different": "≠", "missing": "✗", "unreachable": "?"}
        if self.copies:
            bits.append(
                "nodes: " + "  ".join(f"{marks[c.state]} {c.node} {c.state}" for c in self.copies)
            )
        elif self.pdtui.live.ranktable:  # what the pollers saw, against what the run pushed
            bits.append(
                "nodes: "
                + "  ".join(
                    f"{marks[c.state]} {c.node} {c.state}"
                    for c in self.pdtui.live.ranktable.values()
                )
            )
        gen = self.pdtui.live.generated
        if gen is not None:
            when = time.strftime("%H:%M:%S", time.localtime(gen.generated_at))
            bits.append(
                f"the runbook generated it at {when} and pushed it to "
                f"{len(gen.pushed_to)} node{'s' if len(gen.pushed_to) != 1 else ''}"
            )
        self.query_one("#rt-status", Static).update(" · ".join(bits))

    def on_screen_resume(self) -> None:
        """A runbook run wrote a new ranktable since this view read it: read it again (an
        edit in progress is kept)."""
        gen = self.pdtui.live.generated
        if gen is None or self.path is None or self.modified or not self.path.exists():
            self._render_status()
            return
        try:
            text = read_text(self.path)
            rt = loads(text, source=self.path.name) if text != self.saved_text else None
        except (OSError, UnicodeDecodeError, RanktableError):
            return
        if rt is not None:
            self.rt, self.saved_text = rt, text
            self.copies = []
            self._relint()
            self._show()
        self._render_status()

    def _relint(self) -> None:
        if self.rt is None or self.cluster is None:
            self.findings = []
            return
        remote = (
            {c.node: c.text for c in self.copies if c.state != "unreachable"}
            if self.copies
            else None
        )
        self.findings = lint(self.rt, self.cluster, self.live, remote, dumps(self.rt))

    def _changed(self) -> None:
        self._relint()
        self._show()

    # -- cursor helpers ---------------------------------------------------------------

    def _current(self) -> tuple[str, int, str] | None:
        focused = self.focused
        if not isinstance(focused, DataTable) or focused.id not in LISTS or not focused.row_count:
            return None
        row, col = focused.cursor_coordinate
        return str(focused.id), row, FIELDS[col]

    def _renumber(self) -> None:
        assert self.rt is not None
        n = 1
        for name in LISTS:
            for entry in self.rt.get(name, []):
                if isinstance(entry, dict):
                    entry["cluster_id"] = str(n)
                n += 1

    # -- actions ----------------------------------------------------------------------

    def action_edit(self) -> None:
        cur = self._current()
        if cur is None or self.rt is None:
            self.notify("move to a cell of the prefill or decode list first")
            return
        name, row, field = cur
        entry = self.rt[name][row]
        value = str(entry.get(field, ""))

        def done(new: str | None) -> None:
            if new is None or self.rt is None:
                return
            if new == "" and field in ("super_pod_id", "super_device_id"):
                self.rt[name][row].pop(field, None)
            else:
                self.rt[name][row][field] = new
            self._changed()

        self.app.push_screen(EditCellScreen(f"{name}[{row}].{field}", field, value), done)

    def action_add(self) -> None:
        cur = self._current()
        if self.rt is None:
            return
        name, row = (cur[0], cur[1]) if cur else ("prefill_device_list", -1)
        entries = self.rt.setdefault(name, [])
        entries.insert(
            row + 1, copy.deepcopy(entries[row]) if entries else {f: "" for f in FIELDS[:3]}
        )
        self._renumber()
        self._changed()

    def action_remove(self) -> None:
        cur = self._current()
        if cur is None or self.rt is None:
            return
        name, row, _ = cur
        del self.rt[name][row]
        self._renumber()
        self._changed()

    def action_move(self, step: int) -> None:
        cur = self._current()
        if cur is None or self.rt is None:
            return
        name, row, _ = cur
        entries = self.rt[name]
        to = row + step
        if not 0 <= to < len(entries):
            return
        entries[row], entries[to] = entries[to], entries[row]
        self._renumber()
        self._changed()
        table = self.query_one(f"#{name}", DataTable)
        table.move_cursor(row=to)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "rt-findings":
            return
        f = self.findings[int(str(event.row_key.value))]
        if f.list not in LISTS or f.index is None:
            return
        table = self.query_one(f"#{f.list}", DataTable)
        col = FIELDS.index(f.field) if f.field in FIELDS else 0
        table.focus()
        table.cursor_coordinate = table.validate_cursor_coordinate((f.index, col))  # type: ignore[arg-type]

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        if event.data_table.id in LISTS:
            self.action_edit()

    def action_preview(self) -> None:
        if self.rt is not None:
            self.app.push_screen(TextScreen("ranktable JSON (as written)", dumps(self.rt)))

    def action_save(self) -> None:
        if self.rt is None or self.path is None:
            return
        text = dumps(self.rt)
        try:
            backup = atomic_write(self.path, text)
        except OSError as exc:
            self.notify(f"{self.path}: not saved: {exc}", severity="error", timeout=15)
            return
        self.saved_text = text
        self.notify(f"saved {self.path}" + (f" (previous copy {backup})" if backup else ""))
        self._render_status()

    def action_generate(self) -> None:
        if not self.busy:
            self.run_generate()

    def action_lint(self) -> None:
        if not self.busy:
            self.run_lint()

    def action_compare(self) -> None:
        if not self.busy:
            self.run_compare()

    def action_push(self) -> None:
        if self.rt is None or self.busy:
            return
        nodes = {n.name for n in self.cluster.nodes} if self.cluster else set()
        # "missing/different on node X" is what a push fixes: it does not block one.
        errors = [f for f in self.findings if f.severity == "error" and f.location not in nodes]
        if errors:
            self.notify(
                f"not pushed: {len(errors)} lint errors (first: {errors[0].location}: "
                f"{errors[0].message})",
                severity="error",
                timeout=15,
            )
            return
        self.run_push()

    # -- workers ----------------------------------------------------------------------

    async def _collect(self) -> None:
        pool, cluster = await self.session()
        names = {n.name for n in instance_nodes(cluster)}
        started, answered, label = time.monotonic(), [0], self.busy

        def tick() -> None:
            took = int(time.monotonic() - started)
            self.busy = (
                f"{label} {answered[0]} of {len(cluster.nodes)} nodes answered, "
                f"{took // 60}:{took % 60:02d}"
            )
            self._render_status()

        def on_node(_node: object) -> None:
            answered[0] += 1
            tick()

        timer = self.set_interval(1.0, tick)
        try:
            nodes = await sweep(pool, cluster, on_node=on_node)
        finally:
            timer.stop()
        self.live = {n.name: n for n in nodes if n.name in names}
        text = dumps(self.rt) if self.rt is not None else None
        self.copies = await fetch_all(pool, cluster, text)

    @contextlib.contextmanager
    def _busy(self, label: str, *, changed: bool = True) -> Iterator[None]:
        """Show ``label`` while the block runs; then redraw (with ``changed``: re-lint too)."""
        self.busy = label
        self._render_status()
        try:
            yield
        finally:
            self.busy = ""
            if changed:
                self._changed()
            else:
                self._render_status()

    @work(group="ranktable", exclusive=True, exit_on_error=False, name="ranktable generate")
    async def run_generate(self) -> None:
        with self._busy("collecting hccn_tool/npu-smi data…"):
            await self._collect()
            assert self.cluster is not None and self.live is not None
            down = [f"{n.name}: {n.error}" for n in self.live.values() if not n.reachable]
            if down:
                self.notify("cannot generate: " + "; ".join(down), severity="error", timeout=15)
                return
            try:
                new = generate(self.cluster, self.live)
            except RanktableError as exc:
                self.notify(f"cannot generate: {exc}", severity="error", timeout=15)
                return
            changes = summary_diff(self.rt, new) if self.rt is not None else []
            self.rt = new
            self.copies = restate(self.copies, dumps(new))
            note = f"{len(changes)} changes" if self.saved_text else "new"
            self.notify(f"generated from live data ({note}); s saves, p pushes")

    @work(group="ranktable", exclusive=True, exit_on_error=False, name="ranktable lint")
    async def run_lint(self) -> None:
        with self._busy("linting against the live nodes…"):
            await self._collect()

    @work(group="ranktable", exclusive=True, exit_on_error=False, name="ranktable compare")
    async def run_compare(self) -> None:
        pool, cluster = await self.session()
        with self._busy("reading every node's copy…"):
            text = dumps(self.rt) if self.rt is not None else None
            self.copies = await fetch_all(pool, cluster, text)

    @work(group="ranktable", exclusive=True, exit_on_error=False, name="ranktable push")
    async def run_push(self) -> None:
        pool, cluster = await self.session()
        assert self.rt is not None
        text = dumps(self.rt)
        with self._busy("reading every node's copy…", changed=False):
            self.copies = await fetch_all(pool, cluster, text)
        lines = [line for c in self.copies for line in _copy_lines(c, self.rt)]
        confirmed = await self.app.push_screen_wait(
            ConfirmScreen(
                f"Push {self.path.name if self.path else 'ranktable'} to {len(self.copies)} nodes?",
                "\n".join(lines),
            )
        )
        if not confirmed:
            return
        with self._busy("pushing…"):
            results = await push(pool, cluster, text)
            self.copies = await fetch_all(pool, cluster, text)
        bad = [r for r in results if not r.ok]
        if bad:
            self.notify(
                "; ".join(f"{r.node}: {r.error}" for r in bad)
                + " (their old copies are untouched)",
                severity="error",
                timeout=20,
            )
        else:
            done = sum(1 for r in results if r.changed)
            self.notify(f"pushed to {done} nodes, {len(results) - done} already up to date")
