"""The staff audit log (administrators only; anyone else gets "not found"): the newest staff actions,
filtered by staff member."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from bot.dashboard.pages import Staff, UnitOfWork, not_found, page, scope

router = APIRouter()
SHOWN = 200

ACTION_NAMES = {
    "lead_status": "Đổi trạng thái hồ sơ",
    "lead_note": "Ghi chú hồ sơ",
    "question_answer": "Trả lời câu hỏi",
    "deadline_add": "Thêm hạn đăng ký",
    "deadline_withdraw": "Rút hạn đăng ký",
    "broadcast_create": "Soạn thông báo",
    "broadcast_confirm": "Gửi thông báo",
    "broadcast_cancel": "Hủy thông báo",
    "learning_resolve": "Xử lý câu hỏi chưa trả lời được",
    "login": "Đăng nhập",
    "logout": "Đăng xuất",
    "knowledge_publish": "Sửa kiến thức",
}


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, repos: UnitOfWork, staff: Staff) -> Response:
    if not scope(staff).is_admin:
        return not_found(request, staff)
    who = request.query_params.get("actor", "").strip()[:128]
    return page(
        request,
        "audit.html",
        staff,
        entries=repos.staff_actions.newest(SHOWN, who or None),
        actors=repos.staff_actions.actors(),
        who=who,
        action_names=ACTION_NAMES,
    )
