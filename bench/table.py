"""The rows of the benchmark table and how they are printed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    """One case against its baseline, both measured in the same run.

    `unit` says what the two figures are: "s" (time per call), "B" (bytes), "MB"
    (resident memory) or "req/s" (throughput). For a throughput higher is better, so its
    target is a floor (`ratio ≥ target`); for everything else it is a ceiling.
    """

    name: str
    baseline: str
    subject: float
    base: float
    target: float
    unit: str = "s"
    note: str = ""

    @property
    def higher_is_better(self) -> bool:
        return self.unit == "req/s"

    @property
    def ratio(self) -> float:
        return self.subject / self.base

    @property
    def ok(self) -> bool:
        if self.higher_is_better:
            return self.ratio >= self.target
        return self.ratio <= self.target


@dataclass
class NotRun:
    """Cases that could not run here, and why (printed under the table)."""

    names: list[str]
    reason: str


def figure(value: float, unit: str) -> str:
    if unit == "s":
        if value >= 1e-3:
            return f"{value * 1e3:.2f} ms"
        return f"{value * 1e6:.1f} µs"
    if unit == "B":
        return f"{value / 1024:.1f} KB"
    if unit == "MB":
        return f"{value / 2**20:.1f} MB"
    return f"{value:.1f} {unit}"


def print_table(rows: list[Row], not_run: list[NotRun] = ()) -> None:
    header = ("case", "baseline", "measured", "base", "ratio", "target", "notes", "result")
    lines = [
        (
            r.name,
            r.baseline,
            figure(r.subject, r.unit),
            figure(r.base, r.unit),
            f"{r.ratio:.2f}x",
            f"{'≥' if r.higher_is_better else '≤'} {r.target:g}x",
            r.note,
            "ok" if r.ok else ("UNDER" if r.higher_is_better else "OVER"),
        )
        for r in rows
    ]
    lines += [(name, "", "-", "-", "-", "-", "", "NOT RUN") for n in not_run for name in n.names]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    for i, line in enumerate([header, *lines]):
        cells = zip(line, widths, strict=True)
        print("  ".join(str(cell).ljust(width) for cell, width in cells).rstrip())
        if i == 0:
            print("  ".join("-" * width for width in widths))
    for n in not_run:
        print(f"\nNOT RUN ({len(n.names)} cases): {n.reason}")
