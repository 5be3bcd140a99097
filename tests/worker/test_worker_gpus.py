"""GPU slot planning, tested by its logic (no GPU exists here)."""

from __future__ import annotations

import pytest

from worker.gpus import Slot, parse_gpus, plan_slots, visible_gpus


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, None), ("all", None), ("none", []), ("cpu", []), ("", []), ("0,1, 3", ["0", "1", "3"])],
)
def test_parse_gpus(given, expected) -> None:
    assert parse_gpus(given) == expected


@pytest.mark.parametrize("bad", ["0,,1", "1,1"])
def test_parse_gpus_rejects_bad_lists_naming_the_option(bad: str) -> None:
    with pytest.raises(ValueError, match="--gpus"):
        parse_gpus(bad)


def test_visible_gpus_follows_cuda_visible_devices_then_the_device_count() -> None:
    assert visible_gpus({}, 4) == ["0", "1", "2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}, 8) == ["2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, 8) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,2"}, 8) == ["1"]
    assert visible_gpus({}, 0) == []


def test_one_slot_per_visible_gpu_each_pinned_to_its_device() -> None:
    slots = plan_slots(None, environ={}, device_count=4)
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "1", "2", "3"]
    assert {s.device for s in slots} == {"cuda:0"}  # each process sees its one GPU as cuda:0
    assert len({s.name for s in slots}) == 4


def test_chosen_gpus_only_and_unknown_ones_refused() -> None:
    slots = plan_slots(["1", "3"], environ={}, device_count=4)
    assert [s.devices for s in slots] == [("1",), ("3",)]
    with pytest.raises(ValueError, match="--gpus: 7"):
        plan_slots(["7"], environ={}, device_count=4)


def test_no_gpu_gives_cpu_slots_that_hide_every_gpu_and_split_the_cores() -> None:
    slots = plan_slots(None, environ={}, device_count=0, cpu_slots=3, cores=8)
    env = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "2"}
    assert slots == [Slot(name=f"cpu{i}", devices=(), env=env) for i in range(3)]
    assert {s.device for s in slots} == {"cpu"}
    assert plan_slots([], environ={}, device_count=4)[0].device == "cpu"
    with pytest.raises(ValueError, match="--slots"):
        plan_slots(None, environ={}, device_count=0, cpu_slots=0)


def test_cpu_slots_get_at_least_one_thread_and_keep_the_users_setting() -> None:
    [slot] = plan_slots(None, environ={}, device_count=0, cpu_slots=1, cores=16)
    assert slot.env["OMP_NUM_THREADS"] == "16"
    many = plan_slots(None, environ={}, device_count=0, cpu_slots=4, cores=2)
    assert {s.env["OMP_NUM_THREADS"] for s in many} == {"1"}
    mine = plan_slots([], environ={"OMP_NUM_THREADS": "3"}, device_count=2, cpu_slots=2, cores=8)
    assert all("OMP_NUM_THREADS" not in s.env for s in mine)  # the user's value is inherited
