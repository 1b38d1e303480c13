"""When a paste shows traffic getting through that the evidence before it said could not:
the observation outranks the tables (kb/diagnose.py demotes such a finding to possible and
says what overruled it), and the student is told so in plain words, not left believing the
diagnosis they were led to."""
from __future__ import annotations

from tutor.words import md


def overruled(findings, established_before: set[str], revealed_before) -> list[tuple[str, str]]:
    """(cause, what to say) for each cause this paste's observations overrule: one the
    evidence established (or the student uncovered) before it, and now yields to a probe."""
    said = []
    for finding in findings:
        if not finding.overruled_by:
            continue
        if finding.cause not in established_before and finding.cause not in revealed_before:
            continue
        where = f" on **{md(finding.node)}**" if finding.node else ""
        said.append((finding.cause,
            f"**What you observed outranks what the tables said.** The evidence before this "
            f"showed that {md(finding.title)}{where}, so the traffic should not get through. "
            f"But {md(finding.overruled_by[0])}: it does get through. A probe that works is a "
            f"fact; a table is only what the kernel was told. So either that was mended since "
            f"(by you, or behind your back), or it was never what stopped the traffic. Show "
            f"{md(finding.node or 'that node')}'s tables again and see what changed."))
    return said
