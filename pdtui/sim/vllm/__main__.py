"""`python -m pdtui.sim.vllm serve MODEL ...`: the fake vLLM server."""

import sys

from pdtui.sim.vllm import main

sys.exit(main())
