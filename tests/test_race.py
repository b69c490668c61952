"""The race between sources, as pure bookkeeping: first deliveries, leads, misses, memory."""

from __future__ import annotations

import random

import pytest

from pumpsync._race import LEAD_BUCKETS, LeadStats, RaceTracker

A, B, C = 0, 1, 2


def launch(mint: str) -> tuple[str, str]:
    return ("new_token", mint)


def test_first_source_and_lead_per_pair() -> None:
    race = RaceTracker(["solana", "pumpportal", "anaxer"], window=5)
    for i in range(10):
        t = 1000.0 * i
        race.observe(launch(f"m{i}"), "new_token", A, t)
        race.observe(launch(f"m{i}"), "new_token", B, t + 48)
        race.observe(launch(f"m{i}"), "new_token", C, t + 120)
    race.finish()
    snap = race.snapshot()
    assert snap["events"] == {"new_token": 10}
    assert snap["first"]["solana"] == {"new_token": 10}
    assert snap["leads"]["solana>pumpportal"]["new_token"]["median_ms"] == 48.0
    assert snap["leads"]["solana>anaxer"]["new_token"]["median_ms"] == 120.0
    assert snap["missed"] == {"solana": {}, "pumpportal": {}, "anaxer": {}}
    text = race.summary()
    assert "solana first for 100 %" in text
    assert "median lead 48 ms over pumpportal, 120 ms over anaxer" in text
    assert text.endswith("Missed: none.")


def test_a_copy_stamped_earlier_but_handed_in_later_still_wins() -> None:
    race = RaceTracker(["a", "b"])
    race.observe(launch("m"), "new_token", A, 1000.0)
    race.observe(launch("m"), "new_token", B, 999.0)  # read first by b's thread, delivered second
    race.finish()
    assert race.snapshot()["first"] == {"a": {}, "b": {"new_token": 1}}
    assert race.snapshot()["leads"]["b>a"]["new_token"]["median_ms"] == 1.0


def test_a_miss_counts_only_for_kinds_the_source_carries() -> None:
    race = RaceTracker(["openpump", "anaxer"], window=1)
    race.observe(("trade", "s0"), "trade", A, 0.0)  # only openpump ever sends trades
    race.observe(launch("m0"), "new_token", A, 0.0)
    race.observe(launch("m0"), "new_token", B, 5.0)
    race.observe(launch("m1"), "new_token", A, 100.0)  # anaxer misses this one
    race.observe(launch("m2"), "new_token", B, 200.0)  # and openpump this one
    race.finish()
    snap = race.snapshot()
    assert snap["missed"] == {"openpump": {"new_token": 1}, "anaxer": {"new_token": 1}}
    assert snap["only"] == {"openpump": {"new_token": 1}, "anaxer": {"new_token": 1}}  # the trade is not "only"
    assert "Missed: openpump 1 launch; anaxer 1 launch" in race.summary()


def test_a_source_that_starts_late_has_not_missed_what_came_before_it_carried_anything() -> None:
    race = RaceTracker(["a", "b"], window=1)
    race.observe(launch("early"), "new_token", A, 0.0)
    race.observe(launch("later"), "new_token", A, 100.0)
    race.observe(launch("later"), "new_token", B, 110.0)
    race.finish()
    assert race.snapshot()["missed"] == {"a": {}, "b": {}}


def test_the_window_decides_and_a_copy_after_it_is_a_new_event() -> None:
    race = RaceTracker(["a", "b"], window=1)
    race.observe(launch("x"), "new_token", B, 0.0)  # b carries launches from here on
    race.observe(launch("m"), "new_token", A, 1.0)
    assert race.pending == 2
    race.expire(1000.0)
    assert race.pending == 1
    race.expire(1001.0)
    assert race.pending == 0
    assert race.snapshot()["missed"]["b"] == {"new_token": 1}
    race.observe(launch("m"), "new_token", B, 1500.0)  # too late to be a copy
    assert race.pending == 1
    race.finish()
    assert race.snapshot()["events"] == {"new_token": 3}


def test_copies_from_one_source_count_once() -> None:
    race = RaceTracker(["a", "b"])
    for at in (0.0, 1.0, 2.0):  # redundant connections of one source
        race.observe(launch("m"), "new_token", A, at)
    race.observe(launch("m"), "new_token", B, 10.0)
    race.finish()
    snap = race.snapshot()
    assert snap["events"] == {"new_token": 1}
    assert snap["leads"]["a>b"]["new_token"] == {"count": 1, "median_ms": 10.0, "p90_bound_ms": 10.0}


def test_memory_stays_bounded() -> None:
    race = RaceTracker(["a", "b"], window=3600, capacity=100)
    for i in range(10_000):
        race.observe(("trade", f"s{i}"), "trade", i % 2, float(i))
    assert race.pending == 100
    assert race.evicted == 9_900
    assert sum(race.events.values()) == 9_900
    lead = LeadStats(16, random.Random(1))
    for i in range(1000):
        lead.add(i / 1000)
    assert len(lead.samples) == 16 and lead.count == 1000


def test_reservoir_median_is_exact_below_its_size() -> None:
    lead = LeadStats(1024, random.Random(0))
    values = [0.003, 0.5, 0.01, 0.2, 0.04]
    for v in values:
        lead.add(v)
    assert lead.median() == 0.04
    assert lead.histogram.cumulative()[-1] == ("+Inf", 5)


def test_lead_histograms_cover_every_pair_and_merge_kinds() -> None:
    race = RaceTracker(["a", "b", "c"])
    race.observe(launch("m"), "new_token", A, 0.0)
    race.observe(launch("m"), "new_token", B, 30.0)
    race.observe(("trade", "s"), "trade", A, 0.0)
    race.observe(("trade", "s"), "trade", B, 2.0)
    race.finish()
    hists = race.lead_histograms()
    assert set(hists) == {(x, y) for x in "abc" for y in "abc" if x != y}
    ab = hists[("a", "b")]
    assert ab.count == 2 and ab.sum == pytest.approx(0.032)
    assert dict(ab.cumulative())[repr(LEAD_BUCKETS[1])] == 1  # 2 ms <= 2.5 ms; 30 ms is not
    assert hists[("b", "a")].count == 0
    counts = race.counts()
    assert counts["first"] == {("a", "new_token"): 1, ("a", "trade"): 1}


def test_summary_reads_like_the_issue() -> None:
    race = RaceTracker(["solana", "pumpportal", "anaxer"], window=1)
    rng = random.Random(3)
    for i in range(100):
        t = 2000.0 * i
        first, second = (A, B) if i < 71 else (B, A)
        race.observe(launch(f"m{i}"), "new_token", first, t)
        race.observe(launch(f"m{i}"), "new_token", second, t + 40 + rng.random() * 16)
        if i % 30:
            race.observe(launch(f"m{i}"), "new_token", C, t + 300)
    race.finish()
    text = race.summary()
    assert text.startswith("Race between solana, pumpportal and anaxer. 100 launches: solana first for 71 %")
    assert "pumpportal first for 29 %" in text
    assert text.endswith("Missed: anaxer 3 launches.")
    assert "\n" not in text


def test_nothing_decided_yet() -> None:
    race = RaceTracker(["a", "b"])
    assert race.summary() == "Race between a and b: no event decided yet."
    race.observe(launch("m"), "new_token", A, 0.0)
    assert "1 still open" in race.summary()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        RaceTracker(["a", "a"])
    with pytest.raises(ValueError):
        RaceTracker([])
    with pytest.raises(ValueError):
        RaceTracker(["a"], window=0)


def test_metric_families_export_every_source_kind_and_pair() -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from pumpsync.metrics._collector import RACE_KINDS, race_families

    race = RaceTracker(["openpump", "anaxer"], window=1)
    race.observe(launch("m"), "new_token", A, 0.0)
    race.observe(launch("m"), "new_token", B, 20.0)
    race.observe(launch("n"), "new_token", A, 100.0)

    class Race:
        def collect(self):  # type: ignore[no-untyped-def]
            return race_families(race)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Race())  # type: ignore[arg-type]
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}

    def by_source(name: str) -> dict[tuple[str, str], float]:
        return {(s.labels["source"], s.labels["kind"]): s.value for s in families[name].samples}

    first = by_source("pumpsync_source_first_deliveries")
    assert len(first) == 2 * len(RACE_KINDS)  # zeros for every source and kind
    assert first[("openpump", "new_token")] == 2 and first[("anaxer", "trade")] == 0
    missed = by_source("pumpsync_source_missed_events")
    assert missed[("anaxer", "new_token")] == 1
    only = by_source("pumpsync_source_only_events")
    assert only[("openpump", "new_token")] == 1
    leads = families["pumpsync_source_lead_seconds"].samples
    count = {(s.labels["leader"], s.labels["follower"]): s.value for s in leads if s.name.endswith("_count")}
    assert count == {("openpump", "anaxer"): 1, ("anaxer", "openpump"): 0}
    assert families["pumpsync_race_open_events"].samples[0].value == 0


def test_deliveries_of_several_sources_share_one_queue_and_feed_the_race() -> None:
    from pumpsync._delivery import Delivery, Merge
    from pumpsync._hold import Hold
    from pumpsync._stats import ClientStats, ConnectionStats
    from pumpsync.events import Event

    race = RaceTracker(["openpump", "anaxer"])
    merge = Merge(capacity=3, dedup_size=100, race=race)
    stats = [ClientStats(name, 3, [ConnectionStats(0)]) for name in ("openpump", "anaxer")]
    first, second = (Delivery(s, 3, 100, merge, i) for i, s in enumerate(stats))

    def token(provider: str, mint: str, at: int) -> Event:
        return Event("new_token", provider, mint, None, None, None, at, 0, False, {})

    assert first.deliver(token("openpump", "m1", 10))
    assert not second.deliver(token("anaxer", "m1", 25))  # the same launch: once
    hold = Hold(3, stats[1], merge.lock)
    second.attach_hold(hold)
    hold.begin()  # anaxer recovers a gap: only its own live events wait
    assert second.deliver(token("anaxer", "m2", 30))
    assert first.deliver(token("openpump", "m3", 40))
    assert [merge.queue.get_nowait().mint for _ in range(2)] == ["m1", "m3"]
    assert second.end_hold()
    assert merge.queue.get_nowait().mint == "m2"
    assert (stats[0].duplicates, stats[1].duplicates) == (0, 1)
    for i in range(4):  # overflow: the oldest goes, and its own source counts the drop
        first.deliver(token("openpump", f"o{i}", 50)) if i % 2 else second.deliver(token("anaxer", f"a{i}", 50))
    assert (stats[0].dropped, stats[1].dropped) == (0, 1)
    race.finish()
    assert race.snapshot()["leads"]["openpump>anaxer"]["new_token"]["median_ms"] == 15.0


def test_a_kind_only_one_source_carries_is_no_race() -> None:
    race = RaceTracker(["openpump", "anaxer"])
    race.observe(("token_enriched", "m"), "token_enriched", A, 0.0)
    race.finish()
    assert race.summary() == "Race between openpump and anaxer: no kind of event carried by two of them yet."
    race.observe(launch("m"), "new_token", A, 10.0)
    race.observe(launch("m"), "new_token", B, 30.0)
    race.finish()
    assert "enrichment" not in race.summary() and "1 launch: openpump first for 100 %" in race.summary()
