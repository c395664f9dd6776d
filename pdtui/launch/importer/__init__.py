"""Read runbook-style launch scripts back into a cluster spec.

The scripts are the ones people copy from the vllm-ascend tutorials: ``export K=V`` lines
(plus plain shell variables such as ``nic_name``/``local_ip`` used later as ``$var``), one
``vllm serve MODEL ...`` command spread over ``\\`` continuation lines with single-quoted JSON
arguments that span lines, the ``load_balance_proxy_server_example.py`` command and
``bash gen_ranktable.sh ...``. This is not a shell: only the constructs those scripts use are
understood, and anything pdtui cannot resolve is kept as text and reported.

Mistakes the runbooks are known for are reported as warnings (one line each, naming the file
and line) and, where the intent is clear, repaired: a flag line after a command line without a
trailing backslash is still imported as part of the command.

The phases, one module each: ``shell`` (words and commands), ``scan`` (one script's variables,
exports and the commands that matter), ``serve`` and ``proxy`` (their arguments), ``group``
(data-parallel ranks of one instance), ``values`` (flag values and shared tables) and
``assemble`` (the cluster spec).
"""

from pdtui.launch.importer.assemble import (
    RANKTABLE_ENV,
    ImportResult,
    ScriptImportError,
    import_scripts,
)
from pdtui.launch.importer.values import typed_value

__all__ = [
    "RANKTABLE_ENV",
    "ImportResult",
    "ScriptImportError",
    "import_scripts",
    "typed_value",
]
