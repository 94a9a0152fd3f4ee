"""Editing the knowledge on the dashboard: a level edited is in the bot's next answer with no
restart, a mistake is shown beside its field with the text kept, a contact record reaches the
producer, a revert restores the old text, and province staff edit only their own province's."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from bot.channels.plaintext import html_to_text
from bot.services import Services
from handlers.types import Incoming, Kind
from storage.passwords import hash_password
from storage.repositories import Repos
from tests.bot.conftest import PASSWORD
from tests.bot.test_dashboard_security import login

ENTRY = "machinery-national"
NEW_SHORT = "Dạ, có. Năm nay tỉnh hỗ trợ một phần tiền mua máy mới; mức cụ thể cán bộ sẽ báo anh/chị."


async def csrf(client: httpx.AsyncClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get(path)).text)
    assert found is not None
    return found.group(1)


async def form_of(client: httpx.AsyncClient, path: str) -> dict[str, str]:
    html = (await client.get(path)).text
    values = {m[0]: m[1] for m in re.findall(r'<input name="([a-z_]+)" value="([^"]*)"', html)}
    for name, text in re.findall(r'<textarea name="([a-z_]+)"[^>]*>(.*?)</textarea>', html, flags=re.S):
        values[name] = text
    return {
        k: v.replace("&#39;", "'").replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&")
        for k, v in values.items()
    }


def ask(services: Services, text: str, chat: str = "9001") -> str:
    replies = services.dialogue.handle(Incoming(channel="telegram", chat_id=chat, kind=Kind.TEXT, text=text))
    return html_to_text(replies[0].text)


async def test_an_edit_is_answered_from_at_once_and_a_revert_restores(
    services: Services,
    client: httpx.AsyncClient,
) -> None:
    await login(client)
    before = ask(services, "co ho tro mua may moc khong")
    assert NEW_SHORT not in before
    values = await form_of(client, f"/knowledge/entries/{ENTRY}")
    values |= {
        "short_answer": NEW_SHORT,
        "reason": "kế hoạch năm mới",
        "csrf_token": await csrf(client, "/knowledge"),
    }
    response = await client.post(f"/knowledge/entries/{ENTRY}", data=values)
    assert response.status_code == 303, response.text
    assert NEW_SHORT in ask(services, "co ho tro mua may moc khong", chat="9002")

    with services.db.unit() as repos:
        first = repos.knowledge.newest()
        assert (
            first is not None
            and first.created_by == "dashboard:canbo1"
            and first.reason == "kế hoạch năm mới"
        )
    versions = (await client.get("/knowledge/versions")).text
    assert f"programmes/{ENTRY}.yaml" in versions
    diff = (await client.get(f"/knowledge/versions/{first.id}")).text  # what changed, line by line
    assert 'class="add">+short_answer: Dạ, có. Năm nay tỉnh' in diff and 'class="del">-short_answer:' in diff
    # A second edit, then back to the first version.
    values |= {"short_answer": NEW_SHORT.replace("Năm nay", "Từ tháng sau"), "reason": "thử"}
    assert (await client.post(f"/knowledge/entries/{ENTRY}", data=values)).status_code == 303
    token = await csrf(client, "/knowledge/versions")
    assert (
        await client.post(f"/knowledge/versions/{first.id}/revert", data={"csrf_token": token})
    ).status_code == 303
    assert "Năm nay tỉnh hỗ trợ" in ask(services, "co ho tro mua may moc khong", chat="9003")


async def test_a_mistake_is_shown_beside_its_field_and_nothing_is_published(
    services: Services,
    client: httpx.AsyncClient,
) -> None:
    await login(client)
    values = await form_of(client, f"/knowledge/entries/{ENTRY}")
    values |= {
        "keywords": "máy",
        "levels": "- percent: [",
        "reason": "sửa",
        "csrf_token": await csrf(client, "/knowledge"),
    }
    response = await client.post(f"/knowledge/entries/{ENTRY}", data=values)
    assert response.status_code == 400
    assert re.search(r'data-field="levels">YAML không đọc được', response.text)
    assert "- percent: [" in response.text  # the text typed is kept
    values["levels"] = ""  # readable now, but an entry needs levels or a note, and three keywords
    values["level_note"] = ""
    response = await client.post(f"/knowledge/entries/{ENTRY}", data=values)
    assert response.status_code == 400
    assert 'data-field="keywords">Cần ít nhất 3 dòng (đang có 1).' in response.text  # in words
    assert "unknown entry id" not in response.text  # not the other entries that refer to this one
    with services.db.unit() as repos:
        assert repos.knowledge.newest_id() is None


async def test_a_contact_record_reaches_the_producer(services: Services, client: httpx.AsyncClient) -> None:
    await login(client)
    data = {
        "centre": "Trung tâm Khuyến công Nghệ An",
        "phone": "0238 3844 567",
        "zalo": "0912 000 111",
        "address": "Số 1 đường Lê Hồng Phong, Vinh",
        "hours": "Sáng 7h30–11h30, thứ Hai đến thứ Sáu",
        "email": "",
        "website": "",
        "reason": "số mới",
        "csrf_token": await csrf(client, "/knowledge"),
    }
    response = await client.post("/knowledge/contacts/Ngh%E1%BB%87%20An", data=data)
    assert response.status_code == 303, response.text
    assert services.catalog.kb.contacts["Nghệ An"].phone == "0238 3844 567"
    reply = ask(services, "so dien thoai trung tam khuyen cong nghe an", chat="9010")
    assert "0238 3844 567" in reply and "Zalo: 0912 000 111" in reply and "7h30" in reply
    with services.db.unit() as repos:
        newest = repos.knowledge.newest()
        assert newest is not None and newest.files["contacts.yaml"].startswith("#")  # the guidance is kept


async def test_province_staff_edit_only_their_own(
    services: Services,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    with services.db.unit() as repos:
        repos.staff.upsert("canbo.na", hash_password(PASSWORD), None, role="province", province="Nghệ An")
    await login(client, "canbo.na")
    assert (await client.get(f"/knowledge/entries/{ENTRY}")).status_code == 404  # a national programme
    assert (await client.get("/knowledge/contacts/S%C6%A1n%20La")).status_code == 404
    assert (await client.get("/knowledge/contacts/Ngh%E1%BB%87%20An")).status_code == 200
    assert (await client.get("/knowledge/files/synonyms.yaml")).status_code == 404
    assert (await client.get("/knowledge/versions")).status_code == 404
    token = await csrf(client, "/knowledge")
    response = await client.post(
        f"/knowledge/entries/{ENTRY}", data={"short_answer": NEW_SHORT, "reason": "x", "csrf_token": token}
    )
    assert response.status_code == 404
    with services.db.unit() as repos:
        assert Repos(repos.session).knowledge.newest_id() is None
