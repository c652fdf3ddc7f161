"""Printing helpers shared by the examples (not an example itself).

``print_patch`` prints one patch on one line as it arrives; ``print_tree`` prints the run
tree a finished :class:`~logstream.RunLog` state describes. Ids and times are left out,
so what is printed does not change from run to run.
"""

from __future__ import annotations

from typing import Any

from logstream import LogEntry, RunLogPatch, RunState


def short(value: Any, width: int = 48) -> str:
    """Return ``repr(value)``, cut to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


EMPTY = '""'  # how the root's path (the empty JSON Pointer) is shown


def _op(op: dict[str, Any]) -> str:
    path: str = op["path"]
    value: Any = op.get("value")
    if path == "" or (path.startswith("/logs/") and path.count("/") == 2):  # a run starts
        shown = f"<{value['type']} {value['name']!r}>"
    elif path.endswith("_time"):
        shown = "<time>"
    else:
        shown = short(value)
    return f"{op['op']} {path or EMPTY} {shown}"


def print_patch(patch: RunLogPatch) -> None:
    """Print a patch on one line: ``op path value`` for each of its ops."""
    print(" | ".join(_op(op) for op in patch.ops), flush=True)


def result(entry: LogEntry) -> str:
    """Summarize what a log entry produced: its tokens joined, else its final output."""
    if entry["streamed_output_str"]:
        return short("".join(entry["streamed_output_str"]), 72)
    output = entry["final_output"]
    if isinstance(output, dict) and list(output) == ["output"]:  # the tool/chain envelope
        output = output["output"]
    return short(output, 72)


def print_tree(state: RunState) -> None:
    """Print the root run and its log entries as an indented tree.

    By default log entries carry no parent id (nor do LangChain's; the opt-in
    ``entry_fields=["parent_ids"]`` adds them, see ``nested_agent.py``), but a run inherits
    the tags of its parent. So a run that adds a tag (here: a branch such as ``city:Paris``)
    is the parent of the later runs that carry it; runs that carry no such tag hang off the
    root.
    """
    owner: dict[str, str] = {}  # tag -> key of the entry that added it
    children: dict[str, list[str]] = {}
    for key, entry in state["logs"].items():  # in the order the runs started
        inherited = [tag for tag in entry["tags"] if tag in owner]
        parent = owner[inherited[-1]] if inherited else ""
        children.setdefault(parent, []).append(key)
        owner.update((tag, key) for tag in entry["tags"] if tag not in owner)

    print(f"{state['name']} ({state['type']}) -> {short(state['final_output'], 72)}")

    def walk(parent: str, indent: str) -> None:
        kids = children.get(parent, [])
        for i, key in enumerate(kids):
            entry, last = state["logs"][key], i == len(kids) - 1
            status = "done" if entry["end_time"] else "running"
            print(f"{indent}{'└─' if last else '├─'} {key} ({entry['type']}, {status}): ", end="")
            print(result(entry))
            walk(key, indent + ("   " if last else "│  "))

    walk("", "")
