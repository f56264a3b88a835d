"""Progress lines: rich on a terminal, plain lines in CI."""

from __future__ import annotations

import io

from nvmm_port import ui


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_start_rate_limited_details_and_done():
    out, clock = io.StringIO(), Clock()
    progress = ui.PlainProgress(out, interval=10, clock=clock)
    with progress.task("analyzing dragonfly-2024") as update:
        clock.now += 3
        update("driver/nvmm.c")          # too soon after the start: not printed
        clock.now += 8
        update("driver/x86/nvmm_x86_vmx.c")
        clock.now += 1
        update("driver/x86/nvmm_x86_svm.c")
    assert out.getvalue().splitlines() == [
        "analyzing dragonfly-2024 ...",
        "  analyzing dragonfly-2024: driver/x86/nvmm_x86_vmx.c (11 s)",
        "analyzing dragonfly-2024: done in 12.0 s",
    ]


def test_silent_prints_nothing(capsys):
    with ui.SILENT.task("x") as update:
        update("y")
    assert capsys.readouterr() == ("", "")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_rich_and_a_pipe_plain_lines():
    assert isinstance(ui.for_stream(Tty()), ui.RichProgress)
    assert isinstance(ui.for_stream(io.StringIO()), ui.PlainProgress)


def test_rich_leaves_one_line_for_a_long_step(monkeypatch):
    out = Tty()
    progress = ui.RichProgress(out)
    t = iter([0.0, 0.5, 2.5])
    monkeypatch.setattr(ui.time, "monotonic", lambda: next(t))
    with progress.task("building nvmm.ko") as update:
        update("CC [M] driver/nvmm.o")
    assert "building nvmm.ko: done in 2.5 s" in out.getvalue()


def test_a_quick_step_says_nothing_in_plain_lines():
    out, clock = io.StringIO(), Clock()
    progress = ui.PlainProgress(out, interval=10, clock=clock)
    with progress.task("make nvmm.ko") as update:
        clock.now += 0.5
        update("CC [M] nvmm.o")
    assert out.getvalue() == ""
    with progress.task("git fetch") as update:      # no update at all, but long: its end still says so
        clock.now += 4
    assert out.getvalue() == "git fetch: done in 4.0 s\n"
