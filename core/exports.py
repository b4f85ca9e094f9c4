"""Spreadsheet exports for the month-end close: the same rows as Excel (.xlsx) or CSV.

Amounts are numbers (a numeric cell with a two-decimal format, never text), dates and times
are shown in the business time zone the caller gives, headers are rendered in the active
language (the staff user's). Rows are consumed one at a time from an iterator: an .xlsx is
written by openpyxl's write-only workbook into a temporary file (its memory does not grow with
the rows) and then streamed; a CSV is streamed as it is produced.
"""

import csv
import datetime as dt
import enum
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.http import FileResponse, StreamingHttpResponse
from django.utils.functional import Promise

MONEY_FORMAT = "#,##0.00"
RATE_FORMAT = "0%"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ColumnKind(enum.StrEnum):
    TEXT = "text"
    MONEY = "money"  # Decimal, two places
    RATE = "rate"  # Decimal fraction, shown as a percentage
    INTEGER = "integer"
    DATETIME = "datetime"  # aware; shown in the business time zone
    DATE = "date"


@dataclass(frozen=True)
class Column:
    header: str | Promise
    kind: ColumnKind = ColumnKind.TEXT
    width: int = 16


class ExportFormat(enum.StrEnum):
    XLSX = "xlsx"
    CSV = "csv"


def _local(value: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Excel has no time zones: the wall-clock time in ``tz``, without tzinfo."""
    return value.astimezone(tz).replace(tzinfo=None)


def _xlsx_cells(ws: Any, columns: Sequence[Column], row: Sequence[Any], tz: ZoneInfo) -> list:
    from openpyxl.cell import WriteOnlyCell

    cells: list[Any] = []
    for column, value in zip(columns, row, strict=True):
        if value is None or value == "":
            cells.append(None)
        elif column.kind == ColumnKind.MONEY:
            cell = WriteOnlyCell(ws, value=Decimal(value))
            cell.number_format = MONEY_FORMAT
            cells.append(cell)
        elif column.kind == ColumnKind.RATE:
            cell = WriteOnlyCell(ws, value=Decimal(value))
            cell.number_format = RATE_FORMAT
            cells.append(cell)
        elif column.kind == ColumnKind.DATETIME:
            cell = WriteOnlyCell(ws, value=_local(value, tz))
            cell.number_format = DATETIME_FORMAT
            cells.append(cell)
        elif column.kind == ColumnKind.DATE:
            cell = WriteOnlyCell(ws, value=value)
            cell.number_format = DATE_FORMAT
            cells.append(cell)
        elif column.kind == ColumnKind.INTEGER:
            cells.append(int(value))
        else:
            cells.append(str(value))
    return cells


def xlsx_response(
    *,
    filename: str,
    sheet_title: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    tz: ZoneInfo,
) -> FileResponse:
    """One sheet: a bold header row (frozen), then the rows."""
    # openpyxl is imported here, not at the top: it takes about a second to import, which
    # every process that loads the admin (web, workers, check_ledger) would pay otherwise.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    ws = workbook.create_sheet(title=sheet_title[:31])
    for index, column in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = column.width
    ws.freeze_panes = "A2"
    header = []
    for column in columns:
        cell = WriteOnlyCell(ws, value=str(column.header))
        cell.font = Font(bold=True)
        header.append(cell)
    ws.append(header)
    for row in rows:
        ws.append(_xlsx_cells(ws, columns, row, tz))
    output = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it when sent)
    workbook.save(output)
    output.seek(0)
    return FileResponse(
        output, as_attachment=True, filename=f"{filename}.xlsx", content_type=XLSX_CONTENT_TYPE
    )


class _Echo:
    """A file-like object whose ``write`` returns the line, for streaming ``csv.writer``."""

    def write(self, value: str) -> str:
        return value


def _csv_value(column: Column, value: Any, tz: ZoneInfo) -> str:
    if value is None:
        return ""
    if column.kind == ColumnKind.DATETIME:
        return f"{_local(value, tz):%Y-%m-%d %H:%M:%S}"
    if column.kind == ColumnKind.DATE:
        return f"{value:%Y-%m-%d}"
    if column.kind in (ColumnKind.MONEY, ColumnKind.RATE):
        return f"{Decimal(value)}"  # plain digits and a point: no grouping, no currency sign
    return str(value)


def csv_lines(
    *, columns: Sequence[Column], rows: Iterable[Sequence[Any]], tz: ZoneInfo
) -> Iterator[str]:
    """The header line, then one line per row; a byte-order mark first, so that Excel reads
    the UTF-8 (Chinese names) right. The headers are rendered now, in the active language:
    the rows are produced later, while the response streams."""
    writer = csv.writer(_Echo())
    header = "\ufeff" + writer.writerow([str(column.header) for column in columns])
    return _csv_body(header, writer, columns, rows, tz)


def _csv_body(
    header: str, writer: Any, columns: Sequence[Column], rows: Iterable[Sequence[Any]], tz: ZoneInfo
) -> Iterator[str]:
    yield header
    for row in rows:
        yield writer.writerow(
            [_csv_value(column, value, tz) for column, value in zip(columns, row, strict=True)]
        )


def csv_response(
    *, filename: str, columns: Sequence[Column], rows: Iterable[Sequence[Any]], tz: ZoneInfo
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        csv_lines(columns=columns, rows=rows, tz=tz), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def export_response(
    export_format: ExportFormat,
    *,
    filename: str,
    sheet_title: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    tz: ZoneInfo,
) -> FileResponse | StreamingHttpResponse:
    if export_format == ExportFormat.XLSX:
        return xlsx_response(
            filename=filename, sheet_title=sheet_title, columns=columns, rows=rows, tz=tz
        )
    return csv_response(filename=filename, columns=columns, rows=rows, tz=tz)
