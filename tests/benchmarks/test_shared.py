"""``benchmarks/_shared.py``: the timing and the Markdown report the benchmark scripts share."""

from __future__ import annotations

from tests.benchmark_scripts import load_benchmark


def test_call_times_calls_in_order_and_median_time_counts_from_zero():
    shared = load_benchmark("_shared")
    seen: list = []
    times = shared.call_times(seen.append, ["a", "b", "c"])
    assert seen == ["a", "b", "c"] and len(times) == 3 and all(t >= 0 for t in times)
    seen.clear()
    assert shared.median_time(seen.append, 4) >= 0
    assert seen == [0, 1, 2, 3]


def test_markdown_report_names_the_command_that_made_it(tmp_path):
    shared = load_benchmark("_shared")
    path = tmp_path / "report.md"
    shared.write_markdown_report(path, "A title", "Made by (CPU)", "some_bench.py", ["--steps", "3"], "| a |\n| 1 |")
    assert path.read_text() == (
        "# A title\n\nMade by (CPU):\n\n```\nflock /tmp/heavy.lock python benchmarks/some_bench.py --steps 3\n```\n\n"
        "| a |\n| 1 |\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # written atomically, nothing left beside it
