"""Fair share, the pure rule (``server.share.allot``): which studies free slots go to."""

from __future__ import annotations

import pytest

from server.share import Standing, allot, keeps


def _s(
    sid: int,
    *,
    project: int = 1,
    priority: float = 1.0,
    in_flight: int = 0,
    want: int = 99,
    size: float = 1.0,
) -> Standing:
    return Standing(sid, project, priority, in_flight, want, size)


def test_a_new_study_gets_the_next_free_slot_however_much_an_older_one_holds() -> None:
    big, new = _s(1, in_flight=63), _s(2)
    assert allot([big, new], 1) == {2: 1}
    # and it goes on getting them until it holds its share
    assert allot([big, _s(2, in_flight=10)], 1) == {2: 1}


def test_free_slots_split_by_priority_from_nothing_held() -> None:
    assert allot([_s(1, priority=3.0), _s(2, priority=1.0)], 8) == {1: 6, 2: 2}
    assert allot([_s(1), _s(2), _s(3)], 6) == {1: 2, 2: 2, 3: 2}


def test_what_a_study_holds_counts_against_it() -> None:
    # study 1 already holds 4: the next 4 go to study 2 before study 1 gets more
    assert allot([_s(1, in_flight=4), _s(2)], 6) == {2: 5, 1: 1}


def test_a_study_never_gets_more_than_it_wants_and_the_rest_goes_to_others() -> None:
    assert allot([_s(1, want=1), _s(2, want=10)], 5) == {1: 1, 2: 4}
    assert allot([_s(1, want=0)], 5) == {}
    assert allot([_s(1, want=2)], 5) == {1: 2}  # the pool may stay part idle


def test_shares_split_between_projects_before_studies() -> None:
    # project 1 has three studies, project 2 one: each project gets half
    rows = [_s(1, project=1), _s(2, project=1), _s(3, project=1), _s(4, project=2)]
    given = allot(rows, 6)
    assert sum(n for sid, n in given.items() if sid != 4) == 3
    assert given[4] == 3
    # a project's study that wants nothing more leaves its share to the project's others
    rows = [_s(1, project=1, want=0), _s(2, project=1), _s(3, project=2)]
    assert allot(rows, 4) == {2: 2, 3: 2}


def test_a_quota_caps_a_project_fleet_wide() -> None:
    rows = [_s(1, project=1), _s(2, project=2)]
    # project 1 holds 3 elsewhere in the fleet, its quota is 4: one more, the rest to 2
    given = allot(rows, 6, project_used={1: 3.0}, quotas={1: 4.0})
    assert given == {1: 1, 2: 5}
    assert allot([_s(1, project=1)], 6, project_used={1: 4.0}, quotas={1: 4.0}) == {}
    assert allot([_s(1, project=1)], 2, quotas={1: None}) == {1: 2}


def test_trial_sizes_count_in_slots() -> None:
    # a 4-slot trial's study holding 4 slots is as far along as a 1-slot one holding 4
    rows = [_s(1, in_flight=1, size=4.0), _s(2, in_flight=3)]
    assert allot(rows, 1) == {2: 1}  # study 2 held less
    rows = [_s(1, in_flight=1, size=4.0), _s(2, in_flight=5)]
    assert allot(rows, 4) == {1: 1}
    # a trial bigger than what is free is skipped; smaller ones take the space
    assert allot([_s(1, size=4.0), _s(2, size=0.25)], 3) == {2: 12}
    # fractions pack: four quarter-GPU trials in one slot
    assert allot([_s(1, size=0.25)], 1) == {1: 4}


def test_free_slots_are_held_for_the_next_in_line_whose_trial_is_bigger() -> None:
    # study 1 (4-GPU trials) is furthest below its share: the 3 free slots wait for it
    rows = [_s(1, size=4.0), _s(2, in_flight=2)]
    assert allot(rows, 3, capacity=8) == {}
    assert allot(rows, 4, capacity=8) == {1: 1}
    # a whole GPU among quarter-GPU trials: held the same way
    rows = [_s(1, in_flight=12, size=0.25), _s(2, size=1.0)]
    assert allot(rows, 0.75, capacity=4) == {}
    assert allot(rows, 1.0, capacity=4) == {2: 1}
    # a trial bigger than the whole pool holds nothing (it is refused at creation)
    assert allot([_s(1, size=16.0), _s(2, in_flight=2)], 3, capacity=8) == {2: 3}
    # once the big one holds its share, the others take the slots
    rows = [_s(1, in_flight=1, size=4.0), _s(2, in_flight=1)]
    assert allot(rows, 3, capacity=8) == {2: 3}


@pytest.mark.parametrize("free", [0, -1])
def test_nothing_free_gives_nothing(free: float) -> None:
    assert allot([_s(1)], free) == {}


def _keeps(standings: list[Standing], ended: int, capacity: float, **quota: float) -> bool:
    quotas = {1: quota.get("quota")} if "quota" in quota else {}
    used = {1: quota.get("used", 0.0)}
    return keeps(standings, ended, capacity, quotas=quotas, project_used=used)


def test_a_big_trial_keeps_its_devices_while_its_study_is_below_its_share() -> None:
    # 24 slots, from nothing held: the 4-GPU study 2 trials, the one-slot study of its
    # project 4, project 2's study 12. Project 1 holds 12 now (its one-slot study 8,
    # above its share), project 2 only 3: the 4-GPU study is below its share all the same
    quad, ones, new = _s(1, size=4.0), _s(2), _s(3, project=2)
    assert allot([quad, ones, new], 24, capacity=24) == {1: 2, 2: 4, 3: 12}
    quad, ones, new = (
        _s(1, size=4.0, in_flight=1),
        _s(2, in_flight=8),
        _s(3, project=2, in_flight=3),
    )
    assert allot([quad, ones, new], 4, capacity=24) == {3: 4}, "the rule alone: to project 2"
    assert _keeps([quad, ones, new], 1, 24)
    at_share = _s(1, size=4.0, in_flight=2)
    assert not _keeps([at_share, ones, new], 1, 24)


def test_only_a_bigger_trial_than_others_want_keeps_its_devices() -> None:
    assert not _keeps([_s(1, in_flight=0), _s(2, in_flight=4)], 1, 8), "one size: no drain"
    lone = [_s(1, size=4.0, in_flight=0), _s(2, in_flight=4, want=0)]
    assert not _keeps(lone, 1, 8), "nobody smaller wants the devices"
    assert not _keeps([_s(1, size=4.0, want=0), _s(2)], 1, 8), "it wants no more"
    assert not _keeps([_s(1, size=4.0), _s(2)], 9, 8), "not a study of the pool"


def test_a_big_trial_keeps_its_devices_only_within_its_projects_quota() -> None:
    standings = [_s(1, size=4.0), _s(2, project=2)]
    assert _keeps(standings, 1, 8, quota=8.0, used=4.0)
    assert not _keeps(standings, 1, 8, quota=6.0, used=4.0)
