"""CEL conditions: compiled once per rule-set version, checked against the variables rules may use.

An unknown variable is an error when the rules load, not a condition that is
quietly false at run time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import cel

# What a triage rule may read. Personal data (name, phone, e-mail) is deliberately absent.
TRIAGE_VARIABLES = frozenset(
    {
        "text",
        "channel",
        "customer",
        "order",
        "requested_remedy",
        "tags",
        "metadata",
        "keywords",
        "sentiment",
        "language",
    }
)
# Variables that cost something to compute: only worked out when some condition reads them.
COMPUTED_VARIABLES = frozenset({"sentiment", "language"})
# Handed to CEL only when a condition gets to them: the keywords found can be dozens, at about 1 us each to
# convert, and few conditions read them (`category == "delivery" && keywords.exists(...)` seldom gets there).
# Their value may be a function of no arguments, called then: even listing the keywords found costs time.
LAZY_VARIABLES = frozenset({"keywords"})
# Offer rules run after triage and may also read its outcome.
OFFER_VARIABLES = TRIAGE_VARIABLES | {"category", "severity", "queue"}

# Names bound by comprehension macros (`tags.exists(t, t == "vip")`) are not free variables.
_MACRO_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+)")


@dataclass(frozen=True)
class ConditionProblem:
    message: str
    column: int  # 1-based column inside the expression


class Activation:
    """One complaint's variables, converted to CEL once (on first use) and shared by every condition.

    Converting the variables dominates the cost of a condition (about 20 us against
    well under 1 us to evaluate); with hundreds of rules it must happen once, not per rule.
    """

    def __init__(self, variables: dict[str, Any]):
        self.variables = variables
        self._context: cel.Context | None = None
        self._resolving = False  # whether the lazy variables' resolver is installed

    def add(self, more: dict[str, Any]) -> None:
        """More variables for later conditions (the triage outcome, for the offers), added to the converted ones.

        Converting a complaint's order alone costs about 12 us; the offers reuse it.
        """
        self.variables.update(more)
        if self._context is not None:
            self._context.update(more)

    def context(self, lazy: bool = True) -> cel.Context:
        """The converted variables; with `lazy`, also a resolver that hands CEL the lazy ones when it gets to them.

        The resolver is asked for every variable every condition reads (about 0.15 us each), so it is
        installed only once a condition that may read a lazy variable is about to run.
        """
        context = self._context
        if context is None:
            context = self._context = cel.Context()
            context.update({name: value for name, value in self.variables.items() if name not in LAZY_VARIABLES})
        if lazy and not self._resolving:
            self._resolving = True
            values = {name: value for name, value in self.variables.items() if name in LAZY_VARIABLES}
            if values:
                # asked for every name a condition reads; None (any other name) falls through to the above
                context.set_variable_resolver(_resolver(values))
        return context


def _resolver(values: dict[str, Any]) -> Callable[[str], Any]:
    """What CEL asks for a variable's value: a lazy one's (worked out when first read, if it is a function, as the
    keywords found are), None for the others. It holds the values, not the Activation: no reference cycle."""

    def resolve(name: str) -> Any:
        value = values.get(name)
        if callable(value):
            value = values[name] = value()
        return value

    return resolve


def members_read(sources: Iterable[str], variable: str) -> frozenset[str] | None:
    """The fields of `variable` that these conditions read (`order.value`), or None if one uses it whole.

    Conservative: any mention not followed by `.field` (the object passed on whole, a
    comprehension's own name, the word inside a string) counts as reading all of it.
    """
    fields: set[str] = set()
    for source in sources:
        for mention in re.finditer(rf"(?<![\w.]){re.escape(variable)}\b(\s*\.\s*([A-Za-z_]\w*))?", source):
            if mention.group(2) is None:
                return None
            fields.add(mention.group(2))
    return frozenset(fields)


@dataclass(frozen=True)
class CompiledCondition:
    source: str
    program: Any
    variables: frozenset[str] = frozenset()

    @cached_property
    def reads_lazy(self) -> bool:
        return not self.variables.isdisjoint(LAZY_VARIABLES)

    def evaluate(self, activation: Activation) -> bool:
        """True or False; raises ValueError when the expression fails or is not a boolean."""
        context = activation.context(self.reads_lazy)  # outside the try: a caller's mistake is no failing condition
        try:
            result = self.program.execute(context)
        except Exception as error:  # cel raises TypeError/RuntimeError/ValueError
            raise ValueError(str(error).split(". ")[0]) from None
        if not isinstance(result, bool):
            raise ValueError(f"condition gave {result!r}, not true/false")
        return result


def compile_condition(source: str, allowed: frozenset[str]) -> tuple[CompiledCondition | None, ConditionProblem | None]:
    try:
        program = cel.compile(source)
    except ValueError as error:
        text = str(error)
        match = _CEL_POSITION.search(text)
        column = int(match.group(2)) if match else 1
        detail = text.split("ERROR: ", 1)[-1].split("\n", 1)[0]
        detail = _CEL_POSITION.sub("", detail).lstrip(": ")
        return None, ConditionProblem(f"CEL syntax: {detail}", column)
    bound = set(_MACRO_BINDING.findall(source))
    unknown = sorted(set(program.variables()) - allowed - bound)
    if unknown:
        name = unknown[0]
        column = _column_of(source, name)
        return None, ConditionProblem(
            f"unknown variable {', '.join(unknown)}; rules may use: {', '.join(sorted(allowed))}", column
        )
    # the rule variables it names, a macro's own name included where it is also one (`tags.exists(keywords, ...)`
    # may read the real `keywords` elsewhere): handing CEL one variable too many costs a conversion, one too few
    # an "undefined variable" that would stop the rule from firing
    return CompiledCondition(source, program, frozenset(program.variables()) & allowed), None


def _column_of(source: str, name: str) -> int:
    match = re.search(rf"(?<![\w.]){re.escape(name)}\b", source)
    return match.start() + 1 if match else 1
