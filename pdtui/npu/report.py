"""Text rendering of a health check, shared by ``pdtui check`` (the app draws its own grid)."""

from __future__ import annotations

from pdtui.npu.health import CheckReport
from pdtui.npu.model import NodeHealth, PingResult, State
from pdtui.text import count

#: The symbol carries the state on its own (colour-blind safe); ``plain`` when not a terminal.
SYMBOLS: dict[str, str] = {"ok": "✓", "warn": "!", "fail": "✗", "unknown": "?"}
PLAIN: dict[str, str] = {"ok": "+", "warn": "!", "fail": "X", "unknown": "?"}
_ANSI = {"ok": "32", "warn": "33", "fail": "31;1", "unknown": "90"}


def symbol(state: str, *, color: bool) -> str:
    sym = (SYMBOLS if color else PLAIN).get(state, "?")
    return f"\x1b[{_ANSI.get(state, '0')}m{sym}\x1b[0m" if color else sym


def _counts(node: NodeHealth) -> dict[State, int]:
    counts: dict[State, int] = {"ok": 0, "warn": 0, "fail": 0, "unknown": 0}
    for d in node.devices:
        counts[d.state] += 1
    return counts


def render(report: CheckReport, *, color: bool, problems_limit: int = 200) -> str:
    nodes = report.nodes
    width = max([len(n.name) for n in nodes] + [4])
    most = max([len(n.devices) for n in nodes] + [1])
    lines = [
        f"{report.cluster}: {count(len(nodes), 'node')}, "
        f"{count(sum(len(n.devices) for n in nodes), 'device')},"
        f" {report.seconds:.2f} s" + (f", {len(report.pings)} pings" if report.pings else ""),
        f"{'node':<{width}}  {' '.join(f'{i:>2}' for i in range(most))}   ok warn fail  ?",
    ]
    for n in nodes:
        c = _counts(n)
        cells = " ".join(f" {symbol(d.state, color=color)}" for d in n.devices)
        cells += "   " * (most - len(n.devices))
        lines.append(
            f"{n.name:<{width}}  {cells}  {c['ok']:>3} {c['warn']:>4} {c['fail']:>4}"
            f" {c['unknown']:>2}"
        )
    legend = "  ".join(f"{symbol(s, color=color)} {s}" for s in ("ok", "warn", "fail", "unknown"))
    lines += [legend, ""]
    problems = _problems(nodes, color)
    if problems:
        lines.append("problems:")
        lines += [f"  {p}" for p in problems[:problems_limit]]
        if len(problems) > problems_limit:
            lines.append(f"  ... and {len(problems) - problems_limit} more (use --json)")
    else:
        lines.append("no problems")
    if report.pings:
        lines += ["", *render_ping_matrix(report.pings, [n.name for n in nodes], color=color)]
    return "\n".join(lines)


def _problems(nodes: list[NodeHealth], color: bool) -> list[str]:
    """One line per unreachable node, node-level reason and device that is not ok."""
    problems = []
    for n in nodes:
        if not n.reachable:
            problems.append(f"{symbol('unknown', color=color)} {n.name}: unreachable: {n.error}")
            continue
        problems += [f"{symbol(n.state, color=color)} {n.name}: {r}" for r in n.reasons]
        for d in n.devices:
            if d.state != "ok":
                why = "; ".join(d.reasons) or "no reason given"
                problems.append(f"{symbol(d.state, color=color)} {n.name}:{d.id}  {why}")
    return problems


def render_ping_matrix(pings: list[PingResult], names: list[str], *, color: bool) -> list[str]:
    """Source node x destination node: pings answered / pings sent."""
    width = max([len(n) for n in names] + [8])
    col = max(width, 9)
    corner = "from \\ to"
    out = [
        f"pings answered/sent: {corner}",
        f"{'':<{width}}  " + " ".join(f"{n:>{col}}" for n in names),
    ]
    for src in names:
        row = []
        for dst in names:
            mine = [p for p in pings if p.src_node == src and p.dst_node == dst]
            if src == dst or not mine:
                row.append(f"{'-':>{col}}")
                continue
            good = sum(1 for p in mine if p.ok)
            state = "ok" if good == len(mine) else "fail"
            text = f"{good}/{len(mine)}"
            row.append(" " * (col - len(text) - 2) + symbol(state, color=color) + " " + text)
        out.append(f"{src:<{width}}  " + " ".join(row))
    return out
