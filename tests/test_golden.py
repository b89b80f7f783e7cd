"""Every agent's short seeded run gives the metric rows of its golden file (tests/golden.py).

The files pin behaviour across refactors: a change of what an agent learns regenerates
them in its own commit, with the reason in the message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden import CASES, Case, differences, read_golden, run_case


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@pytest.mark.slow
def test_seeded_run_matches_its_golden_file(
    case: Case, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if case.ray:
        request.getfixturevalue("ray_local")
    found = differences(read_golden(case), run_case(case, tmp_path))
    assert not found, f"{case.name} differs from tests/golden/{case.name}.json:\n" + "\n".join(
        found
    )


def test_comparison_allows_cpu_noise_near_zero_and_nothing_more() -> None:
    golden = [{"step": 1, "loss": 0.02}, {"step": 2, "loss": 2.4778e-05}]
    # One CPU's kernels against another's: the last digits of a value near zero.
    assert not differences(golden, [{"step": 1, "loss": 0.02}, {"step": 2, "loss": 2.4759e-05}])
    # A change of behaviour: one part in a thousand of the column.
    changed = differences(golden, [{"step": 1, "loss": 0.02002}, {"step": 2, "loss": 2.4778e-05}])
    assert changed == ["row 0 (step 1): loss 0.02002 != 0.02"]
    assert differences(golden, [{"step": 1, "loss": 0.02}, {"step": 3, "loss": 2.4778e-05}])
    assert differences(golden, golden[:1]) == ["1 rows, golden has 2"]
