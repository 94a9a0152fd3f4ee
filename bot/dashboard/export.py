"""Lead lists as CSV and XLSX files laid out for a centre's paperwork (Vietnamese headers, one row
per application, the date and filter of the export on top of the spreadsheet)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from storage.models import Lead

# (header, width, value) per column.
Column = tuple[str, int, Callable[[Lead, dict], object]]


def columns(labels: dict, tz: ZoneInfo) -> list[Column]:
    def created(lead: Lead, _: dict) -> str:
        return lead.created_at.astimezone(tz).strftime("%d/%m/%Y %H:%M")

    return [
        ("STT", 6, lambda lead, ctx: ctx["index"]),
        ("Mã hồ sơ", 16, lambda lead, _: lead.ref_code),
        ("Ngày gửi", 17, created),
        ("Họ và tên", 24, lambda lead, _: lead.full_name),
        ("Số điện thoại", 14, lambda lead, _: lead.phone),
        ("Tên cơ sở", 28, lambda lead, _: lead.establishment_name),
        ("Loại hình", 18, lambda lead, _: labels["legal_forms"].get(lead.legal_form or "", lead.legal_form)),
        ("Tỉnh, thành phố", 16, lambda lead, _: lead.province),
        ("Xã, phường", 18, lambda lead, _: lead.commune),
        ("Ngành nghề, sản phẩm", 28, lambda lead, _: lead.sector),
        (
            "Chương trình đề nghị",
            36,
            lambda lead, _: labels["programmes"].get(lead.programme_id or "", lead.programme_id),
        ),
        ("Nội dung đề nghị", 40, lambda lead, _: lead.plan),
        ("Kinh phí dự kiến (đồng)", 18, lambda lead, _: lead.estimated_cost_vnd),
        (
            "Kiểm tra sơ bộ",
            16,
            lambda lead, _: labels["eligibility"].get(lead.eligibility.get("status", ""), ""),
        ),
        ("Trạng thái", 18, lambda lead, _: labels["statuses"].get(lead.status, lead.status)),
        ("Kênh", 10, lambda lead, _: lead.channel),
    ]


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
    money_col = next(i for i, (h, _, _) in enumerate(cols, 1) if h.startswith("Kinh phí"))
    for row in range(header_row + 1, header_row + 1 + len(leads)):
        sheet.cell(row=row, column=money_col).number_format = "#,##0"
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=3)
    if leads:
        sheet.auto_filter.ref = f"A{header_row}:{get_column_letter(len(cols))}{header_row + len(leads)}"
    workbook.properties.created = now.replace(tzinfo=None)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
