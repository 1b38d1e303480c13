"""The packet's path, drawn as inline SVG from the facts.

    instance -> compute node -> network node -> gateway -> outside

Each node shows what tcpdump saw there (a packet and its source address), where the
source address changes (SNAT) or leaves unchanged, and where the packet stops being
seen. Every piece of text comes from the lab's evidence, so all of it is escaped:
the markup is built here and nowhere else, and the page trusts only this markup.
"""
from __future__ import annotations

from html import escape

from kb.addresses import covers
from tutor.roles import node_of

_WIDTH, _HEIGHT = 720, 186
_BOX_W, _BOX_H, _TOP = 112, 56, 44
_STOPS = (("instance", None), ("compute", "compute"), ("network", "network"),
          ("gateway", "gateway"), ("outside", None))
_COLOURS = {"seen": "#1b7f3b", "lost": "#b3261e", "unknown": "#8a8a8a", "changed": "#8250df",
            "unchanged": "#b26a00"}


def _text(x, y, words, size=12, anchor="middle", fill="#1f2328", weight="normal") -> str:
    return (f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-family="sans-serif" font-weight="{weight}">{escape(str(words), quote=True)}</text>')


def path_status(table, roles: dict[str, str], values: dict[str, str]) -> list[dict]:
    """For each stop: what the evidence says about the packet there."""
    fixed = values.get("fixed_address")
    requests = [p for p in table.of("packet") if "reply" not in str(p.get("icmp_type") or "")]
    replies = [p for p in table.of("packet") if "reply" in str(p.get("icmp_type") or "")]
    stops = []
    for label, role in _STOPS:
        node = node_of(roles, role) if role else None
        stop = {"label": label, "node": node, "state": "unknown", "note": ""}
        if role and node:
            here = [p for p in requests if p.get("node") == node]
            captured = [c for c in table.of("capture") if c.get("node") == node]
            if here:
                sources = []
                for packet in here:
                    if packet.get("src") not in sources:
                        sources.append(packet.get("src"))
                stop["state"] = "seen"
                stop["sources"] = sources
                stop["note"] = f"from {sources[0]}" + (f" +{len(sources) - 1}" if len(sources) > 1 else "")
            elif captured:
                stop["state"] = "lost"
                stop["note"] = "captured: nothing"
            stop["captured"] = bool(captured or here)
            stop["replies"] = any(p.get("node") == node for p in replies)
        stops.append(stop)
    # where the source address changes, or leaves unchanged, on the network node's uplink
    network = node_of(roles, "network")
    uplink = values.get("uplink")
    if network and uplink and fixed:
        leaving = [p for p in requests if p.get("node") == network and p.get("iface") == uplink]
        if leaving:
            stop = stops[2]
            if any(p.get("src") == fixed or covers(p.get("src"), fixed) for p in leaving):
                stop["snat"] = ("unchanged", [f"leaves {uplink}", f"still from {fixed}"])
            else:
                stop["snat"] = ("changed", [f"SNAT {fixed}", f"→ {leaving[0].get('src')}"])
    # the packet is lost after the last stop that saw it, if a later one looked
    last_seen = max((i for i, s in enumerate(stops) if s["state"] == "seen"), default=None)
    for i, stop in enumerate(stops):
        if stop["state"] == "lost" and (last_seen is None or i > last_seen):
            stop["lost_here"] = "✗ lost here"
            break
    else:
        # the replies: seen at one stop but not at the stop before it that also captured
        for i in range(len(stops) - 1, 0, -1):
            if stops[i].get("replies"):
                before = next((s for s in reversed(stops[:i]) if s.get("captured")), None)
                if before is not None and not before.get("replies"):
                    stops[i]["lost_here"] = "✗ reply lost here"
                break
    return stops


def packet_path_svg(table, roles: dict[str, str], values: dict[str, str]) -> str:
    stops = path_status(table, roles, values)
    gap = (_WIDTH - 20 - len(stops) * _BOX_W) / (len(stops) - 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="packet-path" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
             f'role="img" aria-label="{escape("the packet path: " + "; ".join(_describe(s) for s in stops), quote=True)}">',
             _text(10, 18, "The packet's path, as the evidence shows it", 13, "start", weight="bold")]
    centres = []
    for i, stop in enumerate(stops):
        x = 10 + i * (_BOX_W + gap)
        centres.append(x + _BOX_W / 2)
        colour = _COLOURS[stop["state"]]
        parts.append(f'<rect x="{x:.0f}" y="{_TOP}" width="{_BOX_W}" height="{_BOX_H}" rx="8" '
                     f'fill="#ffffff" stroke="{colour}" stroke-width="2"/>')
        parts.append(_text(x + _BOX_W / 2, _TOP + 22, stop["label"], 13, weight="bold"))
        if stop["node"]:
            parts.append(_text(x + _BOX_W / 2, _TOP + 40, _short(stop["node"]), 11, fill="#57606a"))
        if stop["note"]:
            parts.append(_text(x + _BOX_W / 2, _TOP + _BOX_H + 18, _short(stop["note"], 24), 11, fill=colour))
        if stop.get("snat"):
            kind, words = stop["snat"]
            for row, line in enumerate(words):
                parts.append(_text(x + _BOX_W / 2, _TOP + _BOX_H + 34 + 14 * row, _short(line, 24), 11,
                                   fill=_COLOURS[kind], weight="bold"))
        if stop.get("replies"):
            parts.append(_text(x + _BOX_W / 2, _TOP + _BOX_H - 4, "replies seen", 9, fill=_COLOURS["seen"]))
        if stop.get("lost_here"):
            parts.append(_text(x + _BOX_W / 2, _TOP - 8, stop["lost_here"], 12, fill=_COLOURS["lost"], weight="bold"))
        elif stop["state"] == "seen":
            parts.append(_text(x + _BOX_W / 2, _TOP - 8, "✓ seen", 12, fill=_COLOURS["seen"], weight="bold"))
    for i in range(len(stops) - 1):
        x1, x2 = centres[i] + _BOX_W / 2, centres[i + 1] - _BOX_W / 2
        y = _TOP + _BOX_H / 2
        colour = "#57606a" if stops[i + 1]["state"] != "unknown" else "#c0c0c0"
        parts.append(f'<line x1="{x1:.0f}" y1="{y:.0f}" x2="{x2 - 6:.0f}" y2="{y:.0f}" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<polygon points="{x2:.0f},{y:.0f} {x2 - 8:.0f},{y - 5:.0f} {x2 - 8:.0f},{y + 5:.0f}" fill="{colour}"/>')
    parts.append(_text(10, _HEIGHT - 8, "green: tcpdump saw the ping · red: a capture saw nothing · grey: not looked yet",
                       10, "start", fill="#57606a"))
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str, limit: int = 18) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _describe(stop: dict) -> str:
    words = stop["label"] + (f" {stop['node']}" if stop["node"] else "")
    if stop.get("lost_here"):
        return words + ": " + stop["lost_here"].lstrip("✗ ")
    if stop["state"] == "seen":
        words += ": " + stop["note"]
    elif stop["state"] == "unknown":
        words += ": not looked yet"
    if stop.get("snat"):
        words += f" ({' '.join(stop['snat'][1])})"
    return words
