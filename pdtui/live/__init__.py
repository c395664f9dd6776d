"""The live model of a deployment, its pollers and the runbook steps as true now."""

from pdtui.live.model import (
    Backend,
    LiveModel,
    NodeLink,
    NpuSample,
    ProcessView,
    ProxyView,
    RanktableCopy,
    RanktableRecord,
    StepRecord,
    Topic,
    process_view,
)
from pdtui.live.poll import Poller, Scheduler
from pdtui.live.steps import StepView, clock_text, step_views

__all__ = [
    "Backend",
    "LiveModel",
    "NodeLink",
    "NpuSample",
    "Poller",
    "ProcessView",
    "ProxyView",
    "RanktableCopy",
    "RanktableRecord",
    "Scheduler",
    "StepRecord",
    "StepView",
    "Topic",
    "clock_text",
    "process_view",
    "step_views",
]
