"""pdtui: bring up and verify prefill-decode disaggregated LLM serving from one terminal."""

__version__ = "0.1.0"
