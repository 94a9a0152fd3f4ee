"""Statistics (``services.stats``): the page with its charts, drawn in the browser by the vendored
Chart.js from the figures the page carries as JSON (no inline script: the CSP allows only our own
script files), and the same figures as a CSV file of (section, key, value) rows.

Query parameters, all optional: ``from`` and ``to`` (dates, YYYY-MM-DD, local days; by default the
last 30 days), ``province`` (an administrator's choice; a province account always gets its own).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from bot.dashboard.export import neutralise
from bot.dashboard.pages import Staff, UnitOfWork, labels, page, scope, services, tz
from services.stats import StatsFilter, checked_filter, statistics

router = APIRouter()


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip()[:10])
    except ValueError:
        return None


def _wanted(request: Request) -> StatsFilter:
    """The filter of the query string; a date that is not one is left out, a province that is not
    one of ours means all of them."""
    params = request.query_params
    today = datetime.now(tz(request)).date()
    province = params.get("province", "").strip()
    if province not in services(request).catalog.kb.provinces.names():
        province = ""
    return checked_filter(_date(params.get("from")), _date(params.get("to")), province, today)


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request, repos: UnitOfWork, staff: Staff) -> Response:
    within = scope(staff)
    stats = statistics(repos, within, _wanted(request), tz(request))
    names = labels(request, within)
    chart_labels: dict[str, Any] = {
        "status": names["statuses"],
        "programme": names["programmes"],
        "category": services(request).texts.labels["categories"],
    }
    return page(request, "stats.html", staff, stats=stats, chart_labels=chart_labels)


@router.get("/stats.csv")
def stats_csv(request: Request, repos: UnitOfWork, staff: Staff) -> Response:
    stats = statistics(repos, scope(staff), _wanted(request), tz(request))
    buffer = io.StringIO()
    buffer.write("\ufeff")  # BOM: Excel opens Vietnamese correctly
    writer = csv.writer(buffer)
    writer.writerow(["section", "key", "value"])
    for section, key, value in stats.rows():
        writer.writerow([section, neutralise(key), value])
    span = f"{stats.filter.start:%Y%m%d}-{stats.filter.end:%Y%m%d}"
    return Response(
        buffer.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="thong-ke-{span}.csv"'},
    )
