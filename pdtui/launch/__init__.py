"""Launch plans, run control and importing runbook-style launch scripts."""
