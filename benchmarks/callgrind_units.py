"""Drive the handler for N units, to count machine instructions per unit with callgrind.

A unit is a text token (``token``) or a chain with a tool child (``tree``: four
callbacks), through ``LogStreamCallbackHandler``'s ``on_*`` methods, drained every 100
tokens or 20 pairs. Run it twice under valgrind with two sizes and divide the difference
by the difference in units, so start-up cancels out::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/callgrind_units.py token 1000
    # ... the same with 2000; (total(2000) - total(1000)) / 1000 = instructions per token

``PYTHONPATH=<other checkout>`` counts another version of logstream the same way.
"""

from __future__ import annotations

import sys
import uuid

from logstream import LogStreamCallbackHandler


def main(mode: str, n: int) -> None:
    """Run ``n`` units of ``mode`` (``token`` or ``tree``) through one handler."""
    ids = [uuid.uuid4() for _ in range(2 * n + 2)]  # made before the units run
    handler = LogStreamCallbackHandler(auto_close=False)
    root = ids[-1]
    handler.on_chain_start({}, {"input": 1}, run_id=root, name="root")
    if mode == "token":
        llm = ids[-2]
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="llm")
        for i in range(n):
            handler.on_llm_new_token("tok", run_id=llm, parent_run_id=root)
            if i % 100 == 0:
                handler.drain()
    else:
        for i in range(n):
            chain, tool = ids[2 * i], ids[2 * i + 1]
            handler.on_chain_start({}, {"x": i}, run_id=chain, parent_run_id=root, name="chain")
            handler.on_tool_start({}, "in", run_id=tool, parent_run_id=chain, name="tool")
            handler.on_tool_end("out", run_id=tool, parent_run_id=chain)
            handler.on_chain_end({"y": i}, run_id=chain, parent_run_id=root)
            if i % 20 == 0:
                handler.drain()
    handler.drain()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
