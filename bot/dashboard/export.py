"""Lead lists as CSV and XLSX files laid out for a centre's paperwork (Vietnamese headers, one row
per application, the date and filter of the export on top of the spreadsheet)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from knowledge.yamlio import read_yaml
from storage.models import Lead

LAYOUT_FILE = Path(__file__).parent / "templates" / "export.yaml"
# (header, width, value) per column.
Column = tuple[str, int, Callable[[Lead, dict], object]]


def layout() -> dict:
    return read_yaml(LAYOUT_FILE)


def columns(labels: dict, tz: ZoneInfo) -> list[Column]:
    """The columns of ``export.yaml`` with the function that fills each."""
    values: dict[str, Callable[[Lead, dict], object]] = {
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


def _rows(leads: list[Lead], cols: list[Column]) -> list[list[object]]:
    return [[value(lead, {"index": i}) for _, _, value in cols] for i, lead in enumerate(leads, 1)]


def to_csv(leads: list[Lead], cols: list[Column]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([header for header, _, _ in cols])
    writer.writerows(_rows(leads, cols))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: Excel opens Vietnamese correctly


def to_xlsx(leads: list[Lead], cols: list[Column], title: str, subtitle: str, now: datetime) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Ho so"
    sheet.append([title])
    sheet.append([subtitle])
    sheet.append([])
    sheet.append([header for header, _, _ in cols])
    for row in _rows(leads, cols):
        sheet.append(row)
    sheet["A1"].font = Font(bold=True, size=13)
    header_row = 4
    for index, (_, width, _) in enumerate(cols, 1):
        cell = sheet.cell(row=header_row, column=index)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        sheet.column_dimensions[get_column_letter(index)].width = width
    for row in sheet.iter_rows(min_row=header_row + 1, min_col=2):  # amounts with thousands separators
        for cell in row:
            if isinstance(cell.value, int):
                cell.number_format = "#,##0"
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=3)
    if leads:
        sheet.auto_filter.ref = f"A{header_row}:{get_column_letter(len(cols))}{header_row + len(leads)}"
    workbook.properties.created = now.replace(tzinfo=None)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
