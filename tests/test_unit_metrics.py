"""The hot path's own histogram: Prometheus' semantics (inclusive `le`, cumulative buckets,
+Inf, sum and count), read back through the exposition format a scraper parses."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from grok_api.metrics import LatencyHistogram


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_buckets_are_cumulative_inclusive_and_end_at_inf() -> None:
    registry = CollectorRegistry()
    h = LatencyHistogram("t_seconds", "Test.", ["surface"], buckets=(0.01, 0.001, 0.1), registry=registry)
    chat = h.labels("chat")
    for value in (0.0005, 0.001, 0.002, 0.1, 7.0):  # 0.001 and 0.1 sit exactly on a bound
        chat.observe(value)
    h.labels("messages").observe(0.05)
    got = scrape(registry)

    def bucket(le: str, surface: str = "chat") -> float:
        return got[("t_seconds_bucket", (("le", le), ("surface", surface)))]

    assert [bucket(le) for le in ("0.001", "0.01", "0.1", "+Inf")] == [2, 3, 4, 5]
    assert got[("t_seconds_count", (("surface", "chat"),))] == 5
    assert got[("t_seconds_sum", (("surface", "chat"),))] == pytest.approx(7.1035)
    assert [bucket(le, "messages") for le in ("0.001", "0.01", "0.1", "+Inf")] == [0, 0, 1, 1]


def test_a_label_set_of_the_wrong_length_is_refused() -> None:
    h = LatencyHistogram("u_seconds", "Test.", ["a", "b"], buckets=(1.0,), registry=CollectorRegistry())
    with pytest.raises(ValueError, match="expected labels"):
        h.labels("only-one")


def test_the_same_label_set_is_one_series() -> None:
    registry = CollectorRegistry()
    h = LatencyHistogram("v_seconds", "Test.", ["a"], buckets=(1.0,), registry=registry)
    assert h.labels("x") is h.labels("x")
    h.labels("x").observe(0.5)
    h.labels("x").observe(2.0)
    assert scrape(registry)[("v_seconds_count", (("a", "x"),))] == 2
