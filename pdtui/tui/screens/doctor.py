"""The doctor's findings: each says where, why and the fix; enter goes where it is fixed."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from pdtui.doctor import Finding, view_of
from pdtui.text import count
from pdtui.tui.safe import printable

_MARKS = {"error": "✗", "warning": "!", "info": "i"}


def finding_text(f: Finding) -> str:
    """One finding in words: what, where, the fix, and where it is fixed."""
    view = view_of(f)
    goes = f"enter opens the {view} view" if view else "fix it in the cluster file"
    return printable(
        f"{_MARKS[f.severity]} {f.id}  {f.where}\n   {f.message}\n"
        f"   fix: {f.fix}  ({goes})\n   source: {f.source}"
    )


class DoctorScreen(ModalScreen[str | None]):
    """Pick a finding: dismissed with the view that fixes it (None: stay, or close)."""

    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("escape,q", "close", "Close"),
    ]

    def __init__(self, findings: list[Finding], title: str = "Doctor") -> None:
        super().__init__(id="doctor-screen")
        self.findings = findings
        self.title_text = title

    def compose(self) -> ComposeResult:
        errors = sum(f.severity == "error" for f in self.findings)
        with VerticalScroll(id="pick-box"):
            yield Static(
                f"[b]{self.title_text}[/b]: {count(errors, 'error')}, "
                f"{count(len(self.findings) - errors, 'warning')}  (enter goes to the fix, "
                "esc closes)"
            )
            if not self.findings:
                yield Static("No findings: the cluster file and the nodes pass every rule.")
                return
            yield OptionList(
                *[Option(finding_text(f), id=str(i)) for i, f in enumerate(self.findings)],
                id="doctor-list",
            )

    def on_mount(self) -> None:
        for options in self.query("#doctor-list").results(OptionList):
            options.highlighted = 0
            options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        finding = self.findings[int(event.option.id or 0)]
        view = view_of(finding)
        if view is None:
            self.notify(
                printable(f"{finding.where}: {finding.fix}"),
                title="Fix in the cluster file",
                timeout=15,
            )
            return
        self.dismiss(view)

    def action_close(self) -> None:
        self.dismiss(None)
