"""Run the suites with Great Expectations 1.x and turn the results into the stewards' terms:
per rule, how many records fail, a few masked example rows with their record ids, and the
severity. Great Expectations is imported inside the functions only (it takes seconds).

The GX project is a file context under ``<quality root>/gx`` (suites, validation results),
its Data Docs site is ``<quality root>/data-docs/index.html``; progress bars are off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from quality.suites import SUITES, Rule, Suite
from rules.personal_data import scan_for_personal_data
from rules.publication import mask_id_number, mask_name, mask_phone

DOCS_SITE = "hub_data_docs"
DATASOURCE = "hub_frames"
EXAMPLES_PER_RULE = 3
RECORD_IDS_PER_RULE = 50
ROW = "row_no"  # position of a row in its frame, so examples are the failing rows themselves


@dataclass(frozen=True)
class RuleOutcome:
    """The result of one rule over one frame."""

    suite: str
    rule: str
    label: str
    severity: str
    success: bool
    checked: int
    failed: int
    record_ids: list[str] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def docs_dir(root: Path) -> Path:
    return root / "data-docs"


def quality_context(root: Path) -> Any:
    """The GX file context of this quality root, with progress bars off and the Data Docs
    site at ``<root>/data-docs``."""
    import great_expectations as gx
    from great_expectations.data_context.store.store import DataDocsSiteConfigTypedDict
    from great_expectations.data_context.types.base import ProgressBarsConfig

    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    site: DataDocsSiteConfigTypedDict = {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(docs_dir(root))},
    }
    sites = context.list_data_docs_sites()
    if DOCS_SITE not in sites:
        context.add_data_docs_site(site_name=DOCS_SITE, site_config=site)
    for name in list(sites):
        if name != DOCS_SITE:
            context.delete_data_docs_site(name)
    context.variables.save()
    _register_suites(context)
    return context


def _expectation(rule: Rule) -> Any:
    import great_expectations as gx

    kind = getattr(gx.expectations, rule.expectation)
    return kind(**rule.kwargs, severity=rule.severity,
                meta={"rule": rule.key, "severity": rule.severity, "label": rule.label})


def _register_suites(context: Any) -> None:
    import great_expectations as gx
    from great_expectations.checkpoint.actions import UpdateDataDocsAction

    try:
        source = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError):
        source = context.data_sources.add_pandas(DATASOURCE)
    for suite in SUITES.values():
        expectation_suite = context.suites.add_or_update(gx.ExpectationSuite(
            name=suite.name, expectations=[_expectation(rule) for rule in suite.rules],
            meta={"record_kind": suite.record_kind},
        ))
        try:
            asset = source.get_asset(suite.name)
        except LookupError:
            asset = source.add_dataframe_asset(suite.name)
        try:
            batch = asset.get_batch_definition("whole")
        except (KeyError, ValueError):
            batch = asset.add_batch_definition_whole_dataframe("whole")
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=expectation_suite))
        context.checkpoints.add_or_update(gx.Checkpoint(
            name=suite.name,
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])],
            result_format={"result_format": "COMPLETE",
                           "unexpected_index_column_names": [ROW, suite.id_column]},
        ))


def validate(context: Any, frames: Mapping[str, pd.DataFrame], run_name: str) -> list[RuleOutcome]:
    """Run the suite of each frame (its name in ``SUITES``); empty frames are skipped."""
    from great_expectations.core.run_identifier import RunIdentifier

    outcomes: list[RuleOutcome] = []
    for name, frame in frames.items():
        suite = SUITES[name]
        if frame.empty:
            continue
        frame = frame.reset_index(drop=True)
        frame[ROW] = frame.index
        checkpoint = context.checkpoints.get(suite.name)
        result = checkpoint.run(batch_parameters={"dataframe": frame},
                                run_id=RunIdentifier(run_name=run_name))
        for validation in result.run_results.values():
            outcomes.extend(_outcomes(suite, frame, validation.results))
    return outcomes


def _outcomes(suite: Suite, frame: pd.DataFrame, results: list[Any]) -> list[RuleOutcome]:
    by_key = {rule.key: rule for rule in suite.rules}
    outcomes: list[RuleOutcome] = []
    for result in results:
        rule = by_key[result.expectation_config.meta["rule"]]
        details = result.result or {}
        ids: list[str] = []
        rows: list[int] = []
        for entry in details.get("unexpected_index_list") or []:
            if not isinstance(entry, dict):
                continue
            value = entry.get(suite.id_column)
            if value is not None and str(value) not in ids:
                ids.append(str(value))
            if entry.get(ROW) is not None and len(rows) < EXAMPLES_PER_RULE:
                rows.append(int(entry[ROW]))
        failed = int(details.get("unexpected_count") or (0 if result.success else max(len(ids), 1)))
        examples = [
            masked_row(row)
            for row in frame.loc[rows, [c for c in suite.show if c in frame.columns]].to_dict("records")
        ]
        outcomes.append(RuleOutcome(
            suite=suite.name, rule=rule.key, label=rule.label, severity=rule.severity,
            success=bool(result.success), checked=int(details.get("element_count") or len(frame)),
            failed=failed if not result.success else 0, record_ids=ids[:RECORD_IDS_PER_RULE],
            examples=examples,
        ))
    return outcomes


def merge_outcomes(outcomes: Iterable[RuleOutcome]) -> list[RuleOutcome]:
    """One outcome per suite and rule from the outcomes of the parts of a run (chunks of a
    day): records checked and failed added up, the first record ids and examples kept."""
    merged: dict[tuple[str, str], RuleOutcome] = {}
    for outcome in outcomes:
        key = (outcome.suite, outcome.rule)
        seen = merged.get(key)
        if seen is None:
            merged[key] = outcome
            continue
        merged[key] = RuleOutcome(
            suite=seen.suite, rule=seen.rule, label=seen.label, severity=seen.severity,
            success=seen.success and outcome.success, checked=seen.checked + outcome.checked,
            failed=seen.failed + outcome.failed,
            record_ids=list(dict.fromkeys(seen.record_ids + outcome.record_ids))[:RECORD_IDS_PER_RULE],
            examples=(seen.examples + outcome.examples)[:EXAMPLES_PER_RULE],
        )
    return list(merged.values())


def masked_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """An example row safe to show a steward: names, document numbers and phones masked
    (rules.publication), free text withheld if the scanner still finds personal data."""
    party = str(row.get("applicant_type") or "person")
    masked: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            masked[key] = None
        elif key in ("applicant_name", "officer_name"):
            masked[key] = mask_name(str(value), party if key == "applicant_name" else "person")
        elif key == "applicant_id_number":
            masked[key] = mask_id_number(str(value))
        elif key == "applicant_mobile":
            masked[key] = mask_phone(str(value))
        elif isinstance(value, str):
            masked[key] = "[已隐藏 withheld]" if scan_for_personal_data({"v": value}) else value
        elif hasattr(value, "item"):
            masked[key] = value.item()
        else:
            masked[key] = value
    name = row.get("applicant_name")
    if name and party != "organisation":
        for key in ("summary", "case_name"):
            if isinstance(masked.get(key), str):
                masked[key] = masked[key].replace(str(name), mask_name(str(name)))
    return masked


def docs_index(root: Path) -> Path:
    return docs_dir(root) / "index.html"
