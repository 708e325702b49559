"""One status vocabulary: the same code for a name in both wings, one definition of a normal stop."""

import subprocess
import sys

import numpy as np
import pytest

from gflow.runs import status


def test_both_wings_share_the_codes():
    from gflow.deep import stop as dstop
    from gflow.twolayer import stop as tstop

    for wing_statuses in (tstop.STATUSES, dstop.STATUSES):
        for name in wing_statuses:
            assert tstop.STATUS_CODE[name] == dstop.STATUS_CODE[name] == status.CODE[name]
    assert status.CODE["nonfinite"] == 5 and status.CODE["max_steps"] == 4  # the two-layer codes are unchanged
    assert set(dstop.STATUSES) == {"reached_target", "max_steps", "nonfinite", "diverged"}
    assert list(tstop.STATUSES) == list(status.NAMES[:7])
    assert tstop.OK_STATUSES is status.OK


def test_helpers():
    codes = np.array([[0, 5, 7], [1, 2, -1]])
    assert status.is_ok(codes).tolist() == [[True, False, False], [True, True, False]]
    assert status.names_of(codes)[1].tolist() == ["reached_target_unrefined", "target_at_init", "running"]
    assert status.counts(codes[:, :2]) == {
        "reached_target": 1,
        "reached_target_unrefined": 1,
        "target_at_init": 1,
        "nonfinite": 1,
    }
    by = status.counts_by_axis(codes[:, :2], [("c", (0.5, 2.0)), ("seed", (0, 1))])
    assert by == {
        "c": {"0.5": {"reached_target": 1, "nonfinite": 1}, "2.0": {"reached_target_unrefined": 1, "target_at_init": 1}}
    }
    # an older deep directory's codes (0 ok, 1 max_steps, 2 nonfinite, 3 diverged), decoded by name
    old = {"reached_target": {"code": 0}, "max_steps": {"code": 1}, "nonfinite": {"code": 2}, "diverged": {"code": 3}}
    assert status.recode([3, 2, 1, 0], old).tolist() == [7, 5, 4, 0]
    with pytest.raises(ValueError, match="wing"):
        status.statuses("shallow")
    assert set(status.table("deep")) == set(status.statuses("deep"))


def test_import_deep_and_the_store_load_no_diffrax():
    code = (
        "import sys, gflow, gflow.deep, gflow.runs.store, gflow.runs.status; "
        "print(sorted(m for m in ('diffrax', 'gflow.twolayer.flow', 'matplotlib', 'xarray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = "import sys, gflow.runs.store, gflow.runs.status; print('jax' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )
