"""Tables the mode screens share."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable


def data_table(
    id: str, columns: list[str], rows: list[list[str | Text]], keys: list[str] | None = None
) -> DataTable[str | Text]:
    """A row-cursor, zebra-striped table; each column keyed by its title."""
    table: DataTable[str | Text] = DataTable(id=id, cursor_type="row", zebra_stripes=True)
    for col in columns:
        table.add_column(col, key=col)
    for i, row in enumerate(rows):
        table.add_row(*row, key=keys[i] if keys else None)
    return table
