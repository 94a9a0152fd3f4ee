"""Lead lists as CSV and XLSX files laid out for a centre's paperwork (Vietnamese headers, one row
per application, the date and filter of the export on top of the spreadsheet). Both are written row
by row from an iterator and handed out in pieces as they are made, so an export of any size starts
at once and streams in constant memory."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from knowledge.yamlio import read_yaml

LAYOUT_FILE = Path(__file__).parent / "templates" / "export.yaml"
# (header, width, value) per column. A lead is a ``Lead`` or a row with its columns by name (what an
# export reads: ``LeadRepo.batch_before``).
Column = tuple[str, int, Callable[[Any, dict[str, Any]], object]]


def layout() -> dict[str, Any]:
    return read_yaml(LAYOUT_FILE)


def columns(labels: dict[str, Any], tz: ZoneInfo) -> list[Column]:
    """The columns of ``export.yaml`` with the function that fills each."""
    values: dict[str, Callable[[Any, dict[str, Any]], object]] = {
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


# An export runs in a worker thread next to the event loop that answers producers. Every few rows it
# lets go of the GIL, so the loop, back from a socket, never waits a whole switch interval (5 ms)
# for it, time and again, while a long file is written.
BREATHE_EVERY = 50


def _breathe(index: int) -> None:
    if index % BREATHE_EVERY == 0:
        time.sleep(0)


def _row(lead: Any, index: int, cols: list[Column]) -> list[object]:
    return [neutralise(value(lead, {"index": index})) for _, _, value in cols]


def csv_chunks(leads: Iterable[Any], cols: list[Column], every: int = 500) -> Iterator[bytes]:
    """The CSV file in pieces of ``every`` rows, so a long list streams instead of piling up."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # BOM: Excel opens Vietnamese correctly
    writer.writerow([header for header, _, _ in cols])
    for index, lead in enumerate(leads, 1):
        writer.writerow(_row(lead, index, cols))
        _breathe(index)
        if index % every == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


# --- XLSX, written as it streams -----------------------------------------------------------------
# A workbook is a zip of XML parts. The sheet is written row by row into a zip entry whose size is
# not known in advance (a data descriptor follows it), so the first bytes leave after the first rows
# and memory stays flat, whatever the number of rows. Strings are inline (no shared-strings table to
# hold in memory); the parts that need the row count (the auto filter) are written after the rows.

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
SHEET_NAME = "Ho so"
HEADER_ROW = 4
# Styles (cellXfs): 0 plain, 1 the title, 2 a header, 3 an amount with thousands separators.
TITLE, HEADER, AMOUNT = 1, 2, 3
_CONTENT_TYPES = (
    _XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/docProps/core.xml" '
    'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    _XML + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
    'core-properties" Target="docProps/core.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = (
    _XML + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/>'
    "</Relationships>"
)
_STYLES = (
    _XML + f'<styleSheet xmlns="{_MAIN}">'
    '<fonts count="3"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="13"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1" applyAlignment="1">'
    '<alignment vertical="center" wrapText="1"/></xf>'
    '<xf numFmtId="3" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
# Characters XML 1.0 cannot carry at all (a spreadsheet would not open): dropped.
_NOT_XML = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF])


def column_letter(index: int) -> str:
    """1 -> A, 26 -> Z, 27 -> AA."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _text_cell(ref: str, text: str, style: int = 0) -> str:
    text = text.translate(_NOT_XML)
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    space = ' xml:space="preserve"' if text != text.strip() or "\n" in text else ""
    styled = f' s="{style}"' if style else ""
    return f'<c r="{ref}" t="inlineStr"{styled}><is><t{space}>{escaped}</t></is></c>'


def _xml_cell(ref: str, value: object, column: int) -> str:
    """Text is always text (never a formula, whatever it starts with); amounts get separators."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return _text_cell(ref, str(value))
    if isinstance(value, int | float):
        styled = f' s="{AMOUNT}"' if isinstance(value, int) and column else ""
        return f'<c r="{ref}"{styled}><v>{value}</v></c>'
    return _text_cell(ref, str(value))


def _xml_row(number: int, values: list[object], letters: list[str]) -> str:
    pairs = enumerate(zip(letters, values, strict=True))
    cells = "".join(_xml_cell(f"{letter}{number}", v, i) for i, (letter, v) in pairs)
    return f'<row r="{number}">{cells}</row>'


def _sheet_start(cols: list[Column], title: str, subtitle: str) -> str:
    widths = "".join(
        f'<col min="{i}" max="{i}" width="{width}" customWidth="1"/>'
        for i, (_, width, _) in enumerate(cols, 1)
    )
    first = f"C{HEADER_ROW + 1}"  # the reference and name columns and the headers stay in view
    headers = "".join(
        _text_cell(f"{column_letter(i)}{HEADER_ROW}", header, HEADER)
        for i, (header, _, _) in enumerate(cols, 1)
    )
    return (
        _XML + f'<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}">'
        '<sheetViews><sheetView workbookViewId="0">'
        f'<pane xSplit="2" ySplit="{HEADER_ROW}" topLeftCell="{first}" activePane="bottomRight"'
        ' state="frozen"/>'
        f'<selection pane="bottomRight" activeCell="{first}" sqref="{first}"/></sheetView></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/><cols>{widths}</cols><sheetData>'
        f'<row r="1">{_text_cell("A1", title, TITLE)}</row><row r="2">{_text_cell("A2", subtitle)}</row>'
        f'<row r="{HEADER_ROW}">{headers}</row>'
    )


def _filter_range(cols: list[Column], count: int) -> str | None:
    return f"A{HEADER_ROW}:{column_letter(len(cols))}{HEADER_ROW + count}" if count else None


def _workbook(cols: list[Column], count: int) -> str:
    names = ""
    if count:
        last = f"${column_letter(len(cols))}${HEADER_ROW + count}"
        names = (
            '<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
            f"'{SHEET_NAME}'!$A${HEADER_ROW}:{last}</definedName></definedNames>"
        )
    return (
        _XML + f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><bookViews><workbookView/></bookViews>'
        f'<sheets><sheet name="{SHEET_NAME}" sheetId="1" r:id="rId1"/></sheets>{names}</workbook>'
    )


def _core(now: datetime) -> str:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        _XML + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/'
        'terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>'
    )


class _Sink(io.RawIOBase):
    """Where the zip writes: bytes collected until the stream takes them (not seekable, so the zip
    writes each entry's sizes after its data)."""

    def __init__(self) -> None:
        self.pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.pending += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self.pending)
        self.pending.clear()
        return out


def xlsx_chunks(
    leads: Iterable[Any], cols: list[Column], title: str, subtitle: str, now: datetime, every: int = 500
) -> Iterator[bytes]:
    """The spreadsheet in pieces: the zip's bytes as they are made, every ``every`` rows."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("docProps/core.xml", _core(now))
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        archive.writestr("xl/styles.xml", _STYLES)
        count = 0
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            rows = [_sheet_start(cols, title, subtitle)]
            letters = [column_letter(i) for i in range(1, len(cols) + 1)]
            for count, lead in enumerate(leads, 1):
                rows.append(_xml_row(HEADER_ROW + count, _row(lead, count, cols), letters))
                _breathe(count)
                if count % every == 0:
                    sheet.write("".join(rows).encode("utf-8"))
                    rows.clear()
                    yield sink.take()
            rows.append("</sheetData>")
            if (ref := _filter_range(cols, count)) is not None:
                rows.append(f'<autoFilter ref="{ref}"/>')
            rows.append("</worksheet>")
            sheet.write("".join(rows).encode("utf-8"))
        archive.writestr("xl/workbook.xml", _workbook(cols, count))
    yield sink.take()
