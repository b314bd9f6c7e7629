"""The expectation suites of the hub, as data: each rule names the frame it checks, the
Great Expectations expectation that checks it, its severity (critical stops the
provincial batch it concerns, warning is only reported) and a bilingual label for the
stewards' summary. ``quality.runner`` turns these into GX suites; this module does not
import Great Expectations, so the DAG folder and ``hub.stages`` stay fast to import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from quality.data import VALID_CATEGORIES, VALID_STATES

Severity = Literal["critical", "warning"]


@dataclass(frozen=True)
class Rule:
    """One expectation of a suite."""

    key: str
    label: str  # Chinese label · English subtitle
    severity: Severity
    expectation: str  # class name in ``great_expectations.expectations``
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """The rules over one frame; ``id_column`` names the record id stewards look up,
    ``record_kind`` the provincial record kind its critical failures stop."""

    name: str
    id_column: str
    record_kind: str
    show: tuple[str, ...]
    rules: tuple[Rule, ...]


def _true(column: str) -> dict[str, Any]:
    return {"column": column, "value_set": [True]}


def _present(column: str) -> dict[str, Any]:
    return {"column": column}


CATALOGUE = Suite(
    name="catalogue",
    id_column="code",
    record_kind="catalogue",
    show=("code", "name", "category", "state", "statutory_limit_days", "promised_limit_days", "missing_disclosure"),
    rules=(
        Rule("catalogue.unique_code", "事项编码唯一 · unique power codes", "critical",
             "ExpectColumnValuesToBeUnique", {"column": "code"}),
        Rule("catalogue.valid_state", "事项状态有效 · valid state (A/T/X)", "critical",
             "ExpectColumnValuesToBeInSet", {"column": "state", "value_set": list(VALID_STATES)}),
        Rule("catalogue.valid_category", "事项类别有效 · valid category", "critical",
             "ExpectColumnValuesToBeInSet", {"column": "category", "value_set": list(VALID_CATEGORIES)}),
        Rule("catalogue.promised_within_statutory", "承诺时限不超过法定时限 · promised ≤ statutory limit",
             "critical", "ExpectColumnPairValuesAToBeGreaterThanB",
             {"column_A": "statutory_limit_days", "column_B": "promised_limit_days", "or_equal": True}),
        Rule("catalogue.disclosure_complete", "公开要素齐全 · disclosure fields complete for the category",
             "warning", "ExpectColumnValuesToBeInSet", _true("disclosure_complete")),
    ),
)

APPLICATIONS = Suite(
    name="applications",
    id_column="net_id",
    record_kind="case",
    show=("net_id", "case_number", "applicant_name", "applicant_id_type", "applicant_id_number",
          "applicant_mobile", "submitted_at", "registered_at"),
    rules=(
        Rule("applications.identifier_check_digit", "证件号码校验位正确 · identifier check digit", "critical",
             "ExpectColumnValuesToBeInSet", _true("identifier_valid")),
        *(
            Rule(f"applications.required.{column}", f"必填字段 {column} · required field", "critical",
                 "ExpectColumnValuesToNotBeNull", _present(column))
            for column in ("net_id", "case_number", "power_code", "case_name", "applicant_name",
                           "applicant_id_number", "submitted_at", "registered_at")
        ),
        Rule("applications.unique_net_id", "网上申请号唯一 · one application per NET_ID", "critical",
             "ExpectColumnValuesToBeUnique", {"column": "net_id"}),
        Rule("applications.plausible_dates", "日期合理 · submitted before registration, within a year",
             "warning", "ExpectColumnValuesToBeInSet", _true("dates_plausible")),
    ),
)

CASES = Suite(
    name="cases",
    id_column="case_number",
    record_kind="case",
    show=("case_number", "net_id", "origin", "state", "summary", "correction_requests", "accepted_at"),
    rules=(
        Rule("cases.registered", "办件有登记信息 · every case has its application or registration record",
             "critical", "ExpectColumnValuesToBeInSet", _true("registration_present")),
        Rule("cases.valid_origin", "办件来源有效 · origin internet, counter or ex officio", "critical",
             "ExpectColumnValuesToBeInSet", _true("origin_valid")),
        Rule("cases.party_identifier_check_digit", "当事人证件号码校验位正确 · party identifier check digit",
             "critical", "ExpectColumnValuesToBeInSet", _true("party_identifier_valid")),
        Rule("cases.summary_length", "办件摘要不少于5个字 · summary at least 5 characters", "critical",
             "ExpectColumnValueLengthsToBeBetween", {"column": "summary", "min_value": 5}),
        Rule("cases.summary_present", "办件摘要必填 · summary present", "critical",
             "ExpectColumnValuesToNotBeNull", _present("summary")),
        Rule("cases.repeated_correction", "多次要求补正 · repeated correction requests", "warning",
             "ExpectColumnValuesToBeBetween", {"column": "correction_requests", "max_value": 1}),
        Rule("cases.correction_after_acceptance", "受理后要求补正 · correction after acceptance", "warning",
             "ExpectColumnValuesToBeInSet", _true("no_correction_after_acceptance")),
    ),
)

STEPS = Suite(
    name="steps",
    id_column="case_number",
    record_kind="step",
    show=("case_number", "step_no", "node", "officer_name", "started_at", "finished_at",
          "registered_at", "case_finished_at"),
    rules=(
        Rule("steps.not_before_registration", "环节早于登记 · no step before registration", "critical",
             "ExpectColumnValuesToBeInSet", _true("not_before_registration")),
        Rule("steps.not_after_finish", "环节晚于办结 · no step after the finish", "critical",
             "ExpectColumnValuesToBeInSet", _true("not_after_finish")),
    ),
)

RESULTS = Suite(
    name="results",
    id_column="case_number",
    record_kind="result",
    show=("case_number", "net_id", "result", "finished_at", "step_count", "fee_due", "fee_paid"),
    rules=(
        Rule("results.has_steps", "有结果无环节 · no result without steps", "critical",
             "ExpectColumnValuesToBeBetween", {"column": "step_count", "min_value": 1}),
        Rule("results.fee_within_5_percent", "实收费用偏离应收超过5% · fee paid more than 5% off the fee due",
             "warning", "ExpectColumnValuesToBeInSet", _true("fee_within_tolerance")),
    ),
)

PENALTIES = Suite(
    name="penalties",
    id_column="case_number",
    record_kind="penalty",
    show=("case_number", "net_id", "occurred_on", "registered_at", "working_days_to_registration",
          "calendar_fallback_years", "penalty_kinds", "fine_amount"),
    rules=(
        Rule("penalties.registered_within_10_working_days",
             "违法行为发生后超过10个工作日立案 · penalty registered more than 10 working days after the offence",
             "warning", "ExpectColumnValuesToBeInSet", _true("registered_in_time")),
        Rule("penalties.fine_has_amount", "罚款未填金额 · fine without an amount", "critical",
             "ExpectColumnValuesToBeInSet", _true("fine_has_amount")),
    ),
)

PROVINCIAL_BATCH = Suite(
    name="provincial_batch",
    id_column="name",
    record_kind="batch",
    show=("name", "present", "expected_count", "actual_count", "expected_sha256", "actual_sha256"),
    rules=(
        Rule("provincial_batch.file_present", "清单文件存在 · every manifest file present", "critical",
             "ExpectColumnValuesToBeInSet", _true("present")),
        Rule("provincial_batch.count_matches", "记录数与清单一致 · counts match the manifest", "critical",
             "ExpectColumnValuesToBeInSet", _true("count_matches")),
        Rule("provincial_batch.hash_matches", "SHA-256 与清单一致 · hashes match the manifest", "critical",
             "ExpectColumnValuesToBeInSet", _true("hash_matches")),
    ),
)

SUITES: Mapping[str, Suite] = {
    s.name: s for s in (CATALOGUE, APPLICATIONS, CASES, STEPS, RESULTS, PENALTIES, PROVINCIAL_BATCH)
}
