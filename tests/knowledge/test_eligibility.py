"""Eligibility verdicts for profiles drawn from shared/domain (facts.md §2, eligibility.md)."""

from __future__ import annotations

from datetime import date

import pytest

from knowledge.catalog import Catalog
from knowledge.eligibility import Profile, Status, max_support
from tests.support.checks import one

TODAY = date(2026, 11, 23)
E, N, U = Status.ELIGIBLE, Status.NOT_ELIGIBLE, Status.UNKNOWN

RURAL_HOUSEHOLD = {
    "legal_form": "household_business",
    "activity": "production",
    "province": "Nghệ An",
    "place_type": "commune",
}

# (case, profile, programme id, expected status, expected max support or None, missing fields)
TABLE = [
    (
        "household business in a rural commune, 800 million machine",
        {**RURAL_HOUSEHOLD, "investment_cost_vnd": 800_000_000},
        "machinery-national",
        E,
        300_000_000,
        (),
    ),
    (
        "household business, small machine below the cap",
        {**RURAL_HOUSEHOLD, "investment_cost_vnd": 200_000_000},
        "machinery-national",
        E,
        100_000_000,
        (),
    ),
    (
        "cooperative buying a whole technology line of 1.2 billion",
        {
            "legal_form": "coop",
            "activity": "production",
            "province": "lam dong",
            "technology_line": True,
            "investment_cost_vnd": 1_200_000_000,
        },
        "machinery-national",
        E,
        450_000_000,
        (),
    ),
    (
        "cooperative group in a ward of a province (old name Thái Bình)",
        {"legal_form": "coop_group", "activity": "production", "province": "thai binh", "place_type": "ward"},
        "machinery-national",
        E,
        None,
        (),
    ),
    (
        "large enterprise in a ward of Hà Nội: machinery",
        {
            "legal_form": "large_enterprise",
            "activity": "production",
            "province": "Hà Nội",
            "place_type": "ward",
            "craft_village": False,
        },
        "machinery-national",
        N,
        None,
        (),
    ),
    (
        "large enterprise in a ward of Hà Nội: cleaner production is open to any size and place",
        {
            "legal_form": "large_enterprise",
            "activity": "production",
            "province": "Hà Nội",
            "place_type": "ward",
        },
        "cleaner-production-assessment",
        E,
        None,
        (),
    ),
    (
        "SME in a ward of Đà Nẵng, not a craft village",
        {
            "legal_form": "sme",
            "activity": "production",
            "province": "da nang",
            "place_type": "ward",
            "craft_village": False,
        },
        "machinery-national",
        N,
        None,
        (),
    ),
    (
        "SME in a recognised craft village in a ward of Đà Nẵng",
        {
            "legal_form": "sme",
            "activity": "production",
            "province": "Đà Nẵng",
            "place_type": "ward",
            "craft_village": True,
        },
        "machinery-national",
        E,
        None,
        (),
    ),
    (
        "ward of Đà Nẵng, craft village not answered",
        {"legal_form": "sme", "activity": "production", "province": "Đà Nẵng", "place_type": "ward"},
        "machinery-national",
        U,
        None,
        ("craft_village",),
    ),
    (
        "commune of Hà Nội",
        {"legal_form": "sme", "activity": "production", "province": "ha noi", "place_type": "commune"},
        "machinery-national",
        E,
        None,
        (),
    ),
    (
        "ward of the old Bình Dương, now TP Hồ Chí Minh",
        {
            "legal_form": "sme",
            "activity": "production",
            "province": "Bình Dương",
            "place_type": "ward",
            "craft_village": False,
        },
        "machinery-national",
        N,
        None,
        (),
    ),
    (
        "ward of Đồng Nai, city status unconfirmed",
        {"legal_form": "sme", "activity": "production", "province": "Đồng Nai", "place_type": "ward"},
        "machinery-national",
        U,
        None,
        (),
    ),
    (
        "commune of Đồng Nai",
        {"legal_form": "sme", "activity": "production", "province": "Đồng Nai", "place_type": "commune"},
        "machinery-national",
        E,
        None,
        (),
    ),
    (
        "city, place type missing",
        {"legal_form": "sme", "activity": "production", "province": "Cần Thơ"},
        "machinery-national",
        U,
        None,
        ("place_type",),
    ),
    (
        "unregistered family workshop",
        {**RURAL_HOUSEHOLD, "legal_form": "unregistered"},
        "machinery-national",
        N,
        None,
        (),
    ),
    ("trading only", {**RURAL_HOUSEHOLD, "activity": "trading_only"}, "machinery-national", N, None, ()),
    (
        "fired-brick kiln",
        {**RURAL_HOUSEHOLD, "activity": "brick_kiln_manual"},
        "machinery-national",
        N,
        None,
        (),
    ),
    (
        "mining in a difficult area",
        {**RURAL_HOUSEHOLD, "activity": "mining", "difficult_area": True},
        "machinery-national",
        E,
        None,
        (),
    ),
    (
        "mining outside difficult areas",
        {**RURAL_HOUSEHOLD, "activity": "mining", "difficult_area": False},
        "machinery-national",
        N,
        None,
        (),
    ),
    (
        "mining, area not answered",
        {**RURAL_HOUSEHOLD, "activity": "mining"},
        "machinery-national",
        U,
        None,
        ("difficult_area",),
    ),
    ("nothing answered yet", {}, "machinery-national", U, None, ("legal_form", "activity", "province")),
    (
        "enterprise set-up in a difficult area: a fixed ceiling",
        {**RURAL_HOUSEHOLD, "legal_form": "sme", "difficult_area": True},
        "enterprise-setup",
        E,
        10_000_000,
        (),
    ),
    (
        "enterprise set-up outside difficult areas",
        {**RURAL_HOUSEHOLD, "legal_form": "sme", "difficult_area": False},
        "enterprise-setup",
        N,
        None,
        (),
    ),
    (
        "demonstration model of 5 billion, new to the area",
        {**RURAL_HOUSEHOLD, "new_to_area": True, "investment_cost_vnd": 5_000_000_000},
        "demo-model-national",
        E,
        1_000_000_000,
        (),
    ),
    (
        "demonstration model, novelty not answered",
        RURAL_HOUSEHOLD,
        "demo-model-national",
        U,
        None,
        ("new_to_area",),
    ),
    (
        "Đắk Lắk local model, producer names the old province Phú Yên",
        {**RURAL_HOUSEHOLD, "province": "Phu Yen", "new_to_area": True, "investment_cost_vnd": 3_000_000_000},
        "dak-lak-demo-model",
        E,
        800_000_000,
        (),
    ),
    (
        "Đắk Lắk local model for a producer in Nghệ An",
        {**RURAL_HOUSEHOLD, "new_to_area": True},
        "dak-lak-demo-model",
        N,
        None,
        (),
    ),
    (
        "large energy user in a city ward: energy saving through cleaner production",
        {
            "legal_form": "large_enterprise",
            "activity": "production",
            "province": "TP HCM",
            "place_type": "ward",
        },
        "energy-saving",
        E,
        None,
        (),
    ),
    (
        "trader asking about energy saving",
        {**RURAL_HOUSEHOLD, "activity": "trading_only"},
        "energy-saving",
        N,
        None,
        (),
    ),
    (
        "SME investing in cluster infrastructure",
        {"legal_form": "sme", "cluster_investor": True, "activity": "production", "province": "Nghệ An"},
        "industrial-cluster-infrastructure",
        E,
        None,
        (),
    ),
    (
        "household business is not a cluster investor",
        {**RURAL_HOUSEHOLD, "cluster_investor": False},
        "industrial-cluster-infrastructure",
        N,
        None,
        (),
    ),
]


@pytest.mark.parametrize(
    ("case", "profile", "programme_id", "status", "amount", "needs"), TABLE, ids=[row[0] for row in TABLE]
)
def test_verdicts(
    catalog: Catalog,
    case: str,
    profile: dict[str, object],
    programme_id: str,
    status: Status,
    amount: int | None,
    needs: tuple[str, ...],
) -> None:
    programme = one(catalog.kb.programme(programme_id))
    verdict = catalog.evaluator.evaluate(programme, Profile.model_validate(profile), TODAY)
    assert verdict.status == status, verdict.reasons
    assert verdict.max_support_vnd == amount
    for field in needs:
        assert field in verdict.needs
    assert verdict.reasons and all(isinstance(r, str) and r for r in verdict.reasons)


def test_one_reason_per_criterion(catalog: Catalog) -> None:
    programme = one(catalog.kb.programme("machinery-national"))
    verdict = catalog.evaluator.evaluate(programme, Profile.model_validate(RURAL_HOUSEHOLD), TODAY)
    assert len(verdict.reasons) == len(programme.criteria)


def test_failed_criterion_is_explained_in_plain_words(catalog: Catalog) -> None:
    programme = one(catalog.kb.programme("machinery-national"))
    verdict = catalog.evaluator.evaluate(
        programme, Profile.model_validate({**RURAL_HOUSEHOLD, "legal_form": "unregistered"}), TODAY
    )
    assert any("hộ kinh doanh" in r for r in verdict.reasons)


def test_every_programme_gets_a_verdict(catalog: Catalog) -> None:
    verdicts = catalog.evaluator.evaluate_all(Profile.model_validate(RURAL_HOUSEHOLD), TODAY)
    assert {v.programme.id for v in verdicts} == {p.id for p in catalog.kb.programmes}
    for v in verdicts:
        data = v.to_dict()
        assert set(data) >= {"id", "category", "scope", "status", "reasons", "max_support_vnd"}


def test_unconfirmed_levels_give_no_amount(catalog: Catalog) -> None:
    for programme in catalog.kb.programmes:
        if not programme.levels:
            verdict = catalog.evaluator.evaluate(
                programme, Profile.model_validate({**RURAL_HOUSEHOLD, "investment_cost_vnd": 10**9}), TODAY
            )
            assert verdict.max_support_vnd is None, programme.id


def test_max_support_arithmetic(catalog: Catalog) -> None:
    line = one(catalog.kb.programme("machinery-national")).levels[1]
    assert max_support(line, 2_000_000_000) == 450_000_000
    assert max_support(line, 100_000_000) == 50_000_000
    assert max_support(line, None) is None


def test_province_with_typo_is_unknown_not_a_crash(catalog: Catalog) -> None:
    programme = one(catalog.kb.programme("machinery-national"))
    verdict = catalog.evaluator.evaluate(
        programme, Profile.model_validate({**RURAL_HOUSEHOLD, "province": "Atlantis"}), TODAY
    )
    assert verdict.status == U and "province" in verdict.needs
