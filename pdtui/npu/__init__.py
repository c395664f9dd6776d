"""NPU tools: parsers for hccn_tool / npu-smi output, health model, classification."""
