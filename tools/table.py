"""Plain-text tables for the top-level tools (demo.py, bench.py)."""


def num(value, fmt: str) -> str:
    """Format a number, or '-' for a missing or non-numeric value."""
    return format(value, fmt) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, a dashed line under the header."""
    lines = [header, *rows]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
