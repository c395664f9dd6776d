"""Launch plans (argv + env per process) and importing runbook-style launch scripts."""

from pdtui.launch.importer import ImportResult, import_scripts
from pdtui.launch.plan import (
    ProcessPlan,
    ProxyPlan,
    plan_cluster,
    plan_instance,
    plan_proxy,
    render_all,
)

__all__ = [
    "ImportResult",
    "ProcessPlan",
    "ProxyPlan",
    "import_scripts",
    "plan_cluster",
    "plan_instance",
    "plan_proxy",
    "render_all",
]
