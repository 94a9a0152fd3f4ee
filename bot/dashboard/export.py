"""Lead lists as CSV and XLSX files laid out for a centre's paperwork (Vietnamese headers, one row
per application, the date and filter of the export on top of the spreadsheet). Both are written row
by row from an iterator, so an export of any size streams in constant memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from knowledge.yamlio import read_yaml
from storage.models import Lead

LAYOUT_FILE = Path(__file__).parent / "templates" / "export.yaml"
# (header, width, value) per column.
Column = tuple[str, int, Callable[[Lead, dict[str, Any]], object]]


def layout() -> dict[str, Any]:
    return read_yaml(LAYOUT_FILE)


def columns(labels: dict[str, Any], tz: ZoneInfo) -> list[Column]:
    """The columns of ``export.yaml`` with the function that fills each."""
    values: dict[str, Callable[[Lead, dict[str, Any]], object]] = {
        "index": lambda lead, ctx: ctx["index"],
        "ref_code": lambda lead, _: lead.ref_code,
        "created": lambda lead, _: lead.created_at.astimezone(tz).strftime("%d/%m/%Y %H:%M"),
        "full_name": lambda lead, _: lead.full_name,
        "phone": lambda lead, _: lead.phone,
        "establishment_name": lambda lead, _: lead.establishment_name,
        "legal_form": lambda lead, _: labels["legal_forms"].get(lead.legal_form or "", lead.legal_form),
        "province": lambda lead, _: lead.province,
        "commune": lambda lead, _: lead.commune,
        "sector": lambda lead, _: lead.sector,
        "programme": lambda lead, _: labels["programmes"].get(lead.programme_id or "", lead.programme_id),
        "plan": lambda lead, _: lead.plan,
        "estimated_cost_vnd": lambda lead, _: lead.estimated_cost_vnd,
        "eligibility": lambda lead, _: labels["eligibility"].get(lead.eligibility.get("status", ""), ""),
        "status": lambda lead, _: labels["statuses"].get(lead.status, lead.status),
        "channel": lambda lead, _: lead.channel,
    }
    return [(c["header"], int(c["width"]), values[c["key"]]) for c in layout()["columns"]]


# A cell starting with one of these is run as a formula by Excel, LibreOffice or Google Sheets
# (=HYPERLINK(...) could send another lead's phone number away at one click). OWASP's advice: prefix
# such text with a single quote, so it shows as typed and never runs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """Text a spreadsheet would run, made inert; numbers and everything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _row(lead: Lead, index: int, cols: list[Column]) -> list[object]:
    return [neutralise(value(lead, {"index": index})) for _, _, value in cols]


def csv_chunks(leads: Iterable[Lead], cols: list[Column], every: int = 500) -> Iterator[bytes]:
    """The CSV file in pieces of ``every`` rows, so a long list streams instead of piling up."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # BOM: Excel opens Vietnamese correctly
    writer.writerow([header for header, _, _ in cols])
    for index, lead in enumerate(leads, 1):
        writer.writerow(_row(lead, index, cols))
        if index % every == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_xlsx(
    leads: Iterable[Lead], cols: list[Column], title: str, subtitle: str, now: datetime, target: IO[bytes]
) -> None:
    """The spreadsheet, written row by row (openpyxl's write-only mode keeps memory flat)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Ho so")  # a WriteOnlyWorksheet (whose stubs lack some attributes)
    header_row = 4
    for index, (_, width, _) in enumerate(cols, 1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = f"C{header_row + 1}"
    sheet.append([_styled(sheet, title, Font(bold=True, size=13))])
    sheet.append([subtitle])
    sheet.append([])
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="center")
    sheet.append([_styled(sheet, header, bold, wrap) for header, _, _ in cols])
    count = 0
    for count, lead in enumerate(leads, 1):
        sheet.append([_cell(sheet, value, i) for i, value in enumerate(_row(lead, count, cols))])
    if count:
        sheet.auto_filter.ref = f"A{header_row}:{get_column_letter(len(cols))}{header_row + count}"
    workbook.properties.created = now.replace(tzinfo=None)
    workbook.save(target)


def _styled(sheet: WriteOnlyWorksheet, value: str, font: Font, alignment: Alignment | None = None) -> Cell:
    cell = WriteOnlyCell(sheet, value=value)
    cell.font = font
    if alignment is not None:
        cell.alignment = alignment
    return cell


def _cell(sheet: WriteOnlyWorksheet, value: object, column: int) -> object:
    """Text is written as text, never as a formula; amounts get thousands separators."""
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"  # openpyxl would otherwise store text starting with "=" as a formula
        return cell
    if isinstance(value, int) and column:
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "#,##0"
        return cell
    return value
