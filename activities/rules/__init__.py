"""The admins' rule set: loading and validating YAML, and evaluating it for triage."""

from activities.rules.loader import RuleError, RuleSet, RulesInvalid, load_rules

__all__ = ["RuleError", "RuleSet", "RulesInvalid", "load_rules"]
