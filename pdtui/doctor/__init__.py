"""The deployment doctor: the field's known mistakes, caught before launch.

``examine(cluster, facts)`` runs every rule of :data:`pdtui.doctor.rules.RULES` against a
resolved cluster and (when ``facts`` holds live facts from the nodes) what the nodes say.
"""

from __future__ import annotations

from pdtui.cluster import Cluster
from pdtui.doctor.model import SEVERITIES, Facts, Finding, NodeFacts, Rule
from pdtui.doctor.rules import RULES, VIEWS

__all__ = ["Facts", "Finding", "NodeFacts", "Rule", "examine", "has_errors", "rules", "view_of"]


def view_of(finding: Finding) -> str | None:
    """The app view that fixes ``finding``, or None when the fix is in the cluster file."""
    return VIEWS.get(finding.id)


def rules() -> list[Rule]:
    """Every rule, in the order they run."""
    return [rule for rule, _check in RULES]


def examine(cluster: Cluster, facts: Facts | None = None) -> list[Finding]:
    """Every finding, errors first, then in rule order; live rules only with live facts."""
    facts = facts or Facts()
    found: list[Finding] = []
    for rule, check in RULES:
        if rule.live and facts.offline:
            continue
        found.extend(check(cluster, facts))
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda f: SEVERITIES.index(f.severity))


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
