"""Generic dialogs every view uses: confirm, show a text or a table, pick one entry of a list."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label, OptionList, Static
from textual.widgets.option_list import Option


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question with the details (what will happen) below it."""

    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    #: enter answers Yes (also after a mode switch and back); y, n and escape always work
    AUTO_FOCUS = "#yes"

    def __init__(self, question: str, details: str) -> None:
        super().__init__(id="confirm-screen")
        self.question = question
        self.details = details

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(Text(self.question, style="bold"))
            with VerticalScroll(id="confirm-details"):
                yield Static(self.details, markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes (y)", id="yes", variant="primary")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class TextScreen(ModalScreen[None]):
    """A titled, scrollable text (JSON, a script, a report), shown without markup."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape,q", "dismiss", "Close")]  # type: ignore[assignment]

    def __init__(self, title: str, text: str) -> None:
        super().__init__(id="text-screen")
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="text-box"):
            yield Label(f"[b]{self.title_text}[/b]  (esc closes)")
            yield Static(self.text, markup=False)


class TableScreen(ModalScreen[None]):
    """A titled table (a report with one row per thing), shown without markup."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape,q", "dismiss", "Close")]  # type: ignore[assignment]

    def __init__(self, title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
        super().__init__(id="table-screen")
        self.title_text = title
        self.columns = columns
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="text-box"):
            yield Label(Text.assemble((self.title_text, "bold"), "  (esc closes)"))
            table: DataTable[Text] = DataTable(id="table-screen-table", cursor_type="row")
            table.add_columns(*self.columns)
            for row in self.rows:
                table.add_row(*(Text(cell) for cell in row))
            yield table


class PickScreen(ModalScreen[int | None]):
    """Pick one entry of a list (history, presets): its index, or None on escape."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "cancel", "Cancel")]  # type: ignore[assignment]

    def __init__(self, title: str, entries: list[str]) -> None:
        super().__init__(id="pick-screen")
        self.title_text = title
        self.entries = entries

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="pick-box"):
            yield Static(f"[b]{self.title_text}[/b]  (enter picks, esc closes)")
            yield OptionList(
                *[Option(e, id=str(i)) for i, e in enumerate(self.entries)], id="pick-list"
            )

    def on_mount(self) -> None:
        options = self.query_one("#pick-list", OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0))

    def action_cancel(self) -> None:
        self.dismiss(None)
