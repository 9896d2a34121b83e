"""Load rules/*.yaml into a checked, compiled RuleSet, or refuse it with every problem located.

Every problem is reported as `file:line:column: path: message` so an admin can
jump straight to it. Nothing an admin writes is ever run as Python: conditions
are CEL, compiled here once per rule-set version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from activities.rules.calendars import BusinessCalendar
from activities.rules.expressions import (
    OFFER_VARIABLES,
    TRIAGE_VARIABLES,
    CompiledCondition,
    compile_condition,
    members_read,
)
from activities.rules.keywords import KeywordIndex
from activities.rules.lint import lint
from activities.rules.schema import WEEKDAYS, CalendarSpec, RuleSetDocument, holiday_data_problems, reference_problems
from redress.state import content_digest


@dataclass(frozen=True)
class RuleError:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.message}"


class RulesInvalid(Exception):
    """The rule files were refused; `errors` lists every problem found."""

    def __init__(self, errors: list[RuleError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass
class RuleSet:
    """A validated, compiled rule set. `version` is a hash of the files' content."""

    version: str
    document: RuleSetDocument
    directory: Path
    conditions: dict[tuple[str, int], CompiledCondition] = field(default_factory=dict)
    keywords: KeywordIndex = field(default_factory=lambda: KeywordIndex([]))
    calendars: dict[str, BusinessCalendar] = field(default_factory=dict)
    warnings: list[RuleError] = field(default_factory=list)
    # answers that depend on this rule set alone (it never changes once loaded), worked out once: see engine.py
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def condition(self, section: str, index: int) -> CompiledCondition | None:
        return self.conditions.get((section, index))

    @cached_property
    def variables_read(self) -> frozenset[str]:
        """Every variable some condition uses: only these are computed and handed to CEL."""
        return frozenset().union(*(condition.variables for condition in self.conditions.values()))

    @cached_property
    def rules_without_keywords(self) -> frozenset[int]:
        """Indices of the rules weighed for every complaint; the others only when one of their keywords is found."""
        return frozenset(index for index, rule in enumerate(self.document.rules) if not rule.keywords)

    @cached_property
    def members_read(self) -> dict[str, frozenset[str]]:
        """Of the objects conditions read field by field (`order.value`), which fields: only those are converted."""
        sources = [condition.source for condition in self.conditions.values()]
        found = {name: members_read(sources, name) for name in ("order", "customer", "sentiment")}
        return {name: fields for name, fields in found.items() if fields is not None}

    @cached_property
    def needs_sentiment(self) -> bool:
        """Whether triage must assess the text's sentiment: a condition reads it or its language, or agents'
        load is balanced (an angry case counts as an intense one)."""
        return self.reads("sentiment") or self.reads("language") or self.document.agent_load is not None

    def reads(self, variable: str) -> bool:
        """Whether any condition uses this variable (costly facts are computed only then)."""
        return variable in self.variables_read


@dataclass
class _Source:
    file: str
    text: str
    tree: CommentedMap


def rule_files(directory: Path) -> list[Path]:
    """The files that make up a rule set: *.yaml and *.yml directly in the folder (tests/ etc. are not rules)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def version_of(files: list[tuple[str, bytes]]) -> str:
    return content_digest(files)[:12]


def load_rules(directory: str | Path, today: date | None = None, check_holiday_data: bool = True) -> RuleSet:
    """Read, validate and compile a rules folder; raise RulesInvalid listing every problem.

    `today` decides which years a calendar must have holiday data for (this one and the next).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RulesInvalid([RuleError(str(directory), 1, 1, "", "rules folder not found")])
    paths = rule_files(directory)
    if not paths:
        raise RulesInvalid([RuleError(str(directory), 1, 1, "", "no *.yaml rule files in this folder")])

    errors: list[RuleError] = []
    sources: list[_Source] = []
    contents: list[tuple[str, bytes]] = []
    for path in paths:
        raw = path.read_bytes()
        contents.append((path.name, raw))
        source, error = _parse(path, raw)
        if error:
            errors.append(error)
        elif source:
            sources.append(source)
    if errors:
        raise RulesInvalid(errors)

    merged, owner = _merge(sources, errors)
    if errors:
        raise RulesInvalid(errors)

    conditions = _compile_conditions(merged, owner, errors)
    try:
        document = RuleSetDocument.model_validate(merged)
    except ValidationError as invalid:
        for problem in invalid.errors():
            errors.append(_locate(owner, problem["loc"], problem["msg"].removeprefix("Value error, ")))
        raise RulesInvalid(errors) from None
    holiday_problems = holiday_data_problems(document, today or date.today()) if check_holiday_data else []
    for loc, message in reference_problems(document) + holiday_problems:
        errors.append(_locate(owner, loc, message))
    if errors:
        raise RulesInvalid(errors)

    rule_set = RuleSet(version=version_of(contents), document=document, directory=directory, conditions=conditions)
    rule_set.warnings = [_locate(owner, loc, message) for loc, message in lint(document, conditions)]
    rule_set.keywords = KeywordIndex(
        [rule.words for rule in document.rules], {i for i, rule in enumerate(document.rules) if rule.negation}
    )
    rule_set.calendars = {name: build_calendar(name, spec) for name, spec in document.calendars.items()}
    return rule_set


def build_calendar(name: str, spec: CalendarSpec) -> BusinessCalendar:
    from zoneinfo import ZoneInfo

    hours = {WEEKDAYS.index(day): tuple(spans) for day, spans in spec.hours.items()}
    make_up = tuple(spec.make_up_day_hours) if spec.make_up_day_hours is not None else hours.get(0, ())
    return BusinessCalendar(
        name=name,
        zone=ZoneInfo(spec.time_zone),
        hours=hours,
        country=spec.country,
        subdivision=spec.subdivision,
        closed=frozenset(spec.closed),
        working=frozenset(spec.working),
        make_up_hours=make_up,
    )


def _compile_conditions(
    merged: dict[str, Any], owner: dict[str, _Source], errors: list[RuleError]
) -> dict[tuple[str, int], CompiledCondition]:
    """Compile every `when` found in the raw tree, so CEL problems show even when the schema has others."""
    compiled: dict[tuple[str, int], CompiledCondition] = {}
    for section, variables in (
        ("rules", TRIAGE_VARIABLES),
        ("offers", OFFER_VARIABLES),
        ("claimant_flags", OFFER_VARIABLES),
    ):
        items = merged.get(section)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            source = item.get("when") if isinstance(item, dict) else None
            if not isinstance(source, str) or not source.strip():
                continue
            condition, problem = compile_condition(source, variables)
            if problem:
                line, column = _expression_position(owner, (section, index, "when"), problem.column)
                errors.append(RuleError(owner[section].file, line, column, f"{section}.{index}.when", problem.message))
            elif condition:
                compiled[(section, index)] = condition
    return compiled


def _parse(path: Path, raw: bytes) -> tuple[_Source | None, RuleError | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, RuleError(str(path), 1, error.start + 1, "", "file is not UTF-8")
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, RuleError(str(path), line, column, "", f"YAML syntax: {error.problem or error.context}")
    except Exception as error:
        return None, RuleError(
            str(path),
            1,
            1,
            "",
            f"YAML the parser could not read ({type(error).__name__}: "
            f"{error}); check tags (!...), anchors and indentation",
        )
    if tree is None:
        return None, None  # an empty file adds nothing
    if not isinstance(tree, CommentedMap):
        return None, RuleError(str(path), 1, 1, "", "a rule file must be a mapping of sections (tiers:, rules: ...)")
    return _Source(str(path), text, tree), None


def _merge(sources: list[_Source], errors: list[RuleError]) -> tuple[dict[str, Any], dict[str, _Source]]:
    merged: dict[str, Any] = {}
    owner: dict[str, _Source] = {}
    for source in sources:
        for key in source.tree:
            if key in owner:
                line, column = source.tree.lc.key(key)
                first = owner[key]
                first_line, _ = first.tree.lc.key(key)
                errors.append(
                    RuleError(
                        source.file,
                        line + 1,
                        column + 1,
                        str(key),
                        f"section already defined in {first.file}:{first_line + 1}; keep each section in one file",
                    )
                )
                continue
            owner[str(key)] = source
            merged[str(key)] = source.tree[key]
    return merged, owner


def _locate(owner: dict[str, _Source], loc: tuple[Any, ...], message: str) -> RuleError:
    """Map a validation error's path onto the deepest YAML node that exists, for its line and column."""
    path = ".".join(str(part) for part in loc)
    if not loc or str(loc[0]) not in owner:
        first = next(iter(owner.values()), None)
        return RuleError(first.file if first else "rules", 1, 1, path, message)
    source = owner[str(loc[0])]
    node: Any = source.tree
    try:
        line, column = node.lc.key(_key(node, loc[0]))
    except (KeyError, TypeError):  # a key the parser keeps as a tagged object: point at the file's start
        return RuleError(source.file, 1, 1, path, message)
    for part in loc:
        if isinstance(node, CommentedMap) and _has_key(node, part):
            key = _key(node, part)
            value = node[key]
            line, column = (
                node.lc.value(key) if not isinstance(value, (CommentedMap, CommentedSeq)) else node.lc.key(key)
            )
            node = value
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line, column = node.lc.item(part)
            node = node[part]
        else:
            break  # a missing field: point at its parent
    return RuleError(source.file, line + 1, column + 1, path, message)


def _has_key(node: CommentedMap, part: Any) -> bool:
    return _key(node, part) is not None


def _key(node: CommentedMap, part: Any) -> Any:
    for key in node:
        if key == part or str(key) == str(part):
            return key
    return None


def _expression_position(owner: dict[str, _Source], loc: tuple[Any, ...], column_in_expression: int) -> tuple[int, int]:
    """Point inside the CEL text: the value's position, plus a quote if the scalar is quoted."""
    located = _locate(owner, loc, "")
    source = owner[str(loc[0])]
    lines = source.text.splitlines()
    line_text = lines[located.line - 1] if located.line - 1 < len(lines) else ""
    quoted = located.column - 1 < len(line_text) and line_text[located.column - 1] in "\"'"
    return located.line, located.column + (1 if quoted else 0) + max(column_in_expression - 1, 0)
