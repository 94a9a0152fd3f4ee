"""The statistics page and its CSV over HTTP: a login is needed, a province account sees only its
province's figures whatever it asks for, an administrator any province or all, the CSV holds the
page's figures as (section, key, value) rows with nothing a spreadsheet would run, and bad dates
fall back to the default period."""

from __future__ import annotations

import csv
import io

import httpx

from bot.services import Services
from tests.bot.test_dashboard_roles import A, B, Seeded, services
from tests.bot.test_dashboard_security import login

__all__ = ["services"]  # the fixture, used by name (the client is tests/bot/conftest.py's)


async def _csv(client: httpx.AsyncClient, **params: str) -> list[list[str]]:
    response = await client.get("/stats.csv", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def _figures(rows: list[list[str]], section: str) -> dict[str, int]:
    return {key: int(value) for s, key, value in rows[1:] if s == section}


async def test_statistics_need_a_login(services: Services, client: httpx.AsyncClient) -> None:
    for path in ("/stats", "/stats.csv"):
        response = await client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/", path


async def test_a_province_account_sees_only_its_province(
    services: Services, client: httpx.AsyncClient
) -> None:
    Seeded(services)
    assert (await login(client, "nghean")).status_code == 303
    for params in ({}, {"province": B}):
        page = await client.get("/stats", params=params)
        assert page.status_code == 200
        assert f"Câu hỏi của {A}" in page.text and f"Câu hỏi của {B}" not in page.text
        assert 'id="chart-questions"' in page.text and "/static/chartjs/chart.umd.min.js" in page.text
        rows = await _csv(client, **params)
        assert rows[0] == ["section", "key", "value"]
        assert _figures(rows, "leads_by_province") == {A: 1}
        assert _figures(rows, "unanswered") == {f"Câu hỏi của {A}": 1}
        assert sum(_figures(rows, "staff_questions_per_day").values()) == 1
        assert len(_figures(rows, "questions_per_day")) == 30


async def test_an_administrator_sees_all_or_one_province(
    services: Services, client: httpx.AsyncClient
) -> None:
    Seeded(services)
    assert (await login(client, "quantri")).status_code == 303
    everything = await _csv(client)
    assert _figures(everything, "leads_by_province") == {A: 1, B: 1}
    assert _figures(everything, "funnel")["submitted"] == 2
    one = await _csv(client, province=B)
    assert _figures(one, "leads_by_province") == {B: 1}
    page = await client.get("/stats", params={"province": B})
    assert f"Câu hỏi của {B}" in page.text and f"Câu hỏi của {A}" not in page.text
    assert _figures(await _csv(client, province="Không có tỉnh này"), "leads_by_province") == {A: 1, B: 1}


async def test_the_csv_runs_nothing_in_a_spreadsheet(services: Services, client: httpx.AsyncClient) -> None:
    with services.db.unit() as repos:
        user = repos.users.get_or_create("telegram", "777", "X")
        services.core.questions.ask(repos, user, '=HYPERLINK("http://x.example","bấm")', A)
    assert (await login(client, "quantri")).status_code == 303
    rows = await _csv(client)
    keys = [key for section, key, _ in rows[1:] if section == "unanswered"]
    assert keys == ['\'=HYPERLINK("http://x.example","bấm")']


async def test_bad_dates_fall_back_to_the_last_30_days(services: Services, client: httpx.AsyncClient) -> None:
    assert (await login(client, "quantri")).status_code == 303
    page = await client.get("/stats", params={"from": "hôm qua", "to": "2026-13-45", "province": "<b>"})
    assert page.status_code == 200
    assert len(_figures(await _csv(client, **{"from": "x"}), "questions_per_day")) == 30
    two_days = await _csv(client, **{"from": "2026-11-02", "to": "2026-11-01"})
    assert list(_figures(two_days, "questions_per_day")) == ["2026-11-01", "2026-11-02"]
