"""The device ledger: trials of any size on one worker's devices, never oversubscribed."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from hpo.resources import demand
from worker.placement import DeviceLedger

Q = Fraction(1, 4)


def test_whole_gpu_trials_take_wholly_free_devices_and_give_them_back() -> None:
    ledger = DeviceLedger(["0", "1", "2", "3"])
    pair = ledger.take(Fraction(2))
    assert pair == ("0", "1")
    assert ledger.where(Fraction(2)) == ("2", "3")
    assert not ledger.fits(Fraction(3))
    ledger.give(pair, Fraction(2))
    assert ledger.fits(Fraction(4)) and not ledger.busy()


def test_shares_pack_best_fit_so_whole_gpus_stay_free() -> None:
    ledger = DeviceLedger(["0", "1"])
    placed = [ledger.take(Q) for _ in range(4)]
    assert placed == [("0",)] * 4  # one GPU filled before the next is touched
    assert ledger.free("0") == 0 and ledger.fits(Fraction(1))
    ledger.take(Fraction(1, 2))
    assert ledger.where(Q) == ("1",) and not ledger.fits(Fraction(1))
    # a freed quarter on a full GPU is the best fit for the next quarter
    ledger.give(("0",), Q)
    assert ledger.where(Q) == ("0",)


def test_sizes_that_never_fit_and_cpu_slots() -> None:
    ledger = DeviceLedger(["0", "1"])
    assert ledger.ever_fits(Fraction(2)) and not ledger.ever_fits(Fraction(4))
    assert ledger.where(Fraction(4)) is None
    cpu = DeviceLedger(["cpu0", "cpu1"], gpus=False)
    assert cpu.ever_fits(Fraction(1)) and not cpu.ever_fits(Q)
    assert not cpu.ever_fits(Fraction(2))
    assert cpu.take(Fraction(1)) == ("cpu0",) and cpu.take(Fraction(1)) == ("cpu1",)
    assert not cpu.fits(Fraction(1))


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        DeviceLedger([])
    with pytest.raises(ValueError):
        DeviceLedger(["0", "0"])
    ledger = DeviceLedger(["0"])
    with pytest.raises(ValueError):
        ledger.take(Fraction(0))
    with pytest.raises(ValueError):
        ledger.give(("0",), Q)  # nothing was taken
    ledger.take(Fraction(1))
    with pytest.raises(ValueError):
        ledger.take(Q)


def test_random_traffic_never_oversubscribes_a_device() -> None:
    rng = random.Random(7)
    ledger = DeviceLedger([str(i) for i in range(4)])
    sizes = [demand(g) for g in (None, 0.25, 0.5, 2, 4, 0.125)]
    held: list[tuple[tuple[str, ...], Fraction]] = []
    for _ in range(2000):
        if held and rng.random() < 0.45:
            placement, size = held.pop(rng.randrange(len(held)))
            ledger.give(placement, size)
        else:
            size = rng.choice(sizes)
            if ledger.fits(size):
                placement = ledger.take(size)
                assert len(placement) == max(1, int(size))
                held.append((placement, size))
        for device in ledger.devices:
            used = sum(min(s, 1) for p, s in held if device in p)
            assert used <= 1 and ledger.free(device) == 1 - used


def test_room_for_says_how_close_a_trial_is_to_fitting() -> None:
    ledger = DeviceLedger(["0", "1", "2", "3"])
    ledger.take(Fraction(1, 4))
    ledger.take(Fraction(1))
    assert ledger.room_for(Fraction(4)) == 2, "two idle GPUs of the four a 4-GPU trial needs"
    assert ledger.room_for(Fraction(1, 2)) == 1
    ledger.take(Fraction(2))
    assert ledger.room_for(Fraction(2)) == 0
    assert ledger.room_for(Fraction(1, 2)) == Fraction(3, 4)
