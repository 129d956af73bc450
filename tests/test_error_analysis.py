import pytest

from dlrun.config import DiagnoseConfig
from dlrun.diagnosis.bias_variance import analyse


def verdict(train, dev, human=0.0, train_dev=None, test=None, **settings):
    return analyse({"human": human, "train": train, "train_dev": train_dev, "dev": dev,
                    "test": test}, DiagnoseConfig(**{"human_error": human, **settings}))


@pytest.mark.parametrize("train, dev, human, expected", [
    (0.01, 0.11, 0.0, "high variance"),
    (0.15, 0.16, 0.0, "high bias"),
    (0.15, 0.30, 0.0, "high bias and high variance"),
    (0.005, 0.01, 0.0, "good fit"),
    (0.15, 0.16, 0.14, "high variance"),
])
def test_the_course_table_comes_out_right(train, dev, human, expected):
    assert verdict(train, dev, human)["verdict"] == expected


def test_human_error_near_train_error_makes_the_run_variance_limited_not_bias():
    result = verdict(0.15, 0.16, human=0.14)
    assert result["limiting"] == "variance"
    assert result["problems"] == ["variance"]
    bias = result["gaps"]["avoidable_bias"]
    assert bias["value"] == pytest.approx(0.01)
    assert bias["threshold"] == pytest.approx(0.014)  # a tenth of the 14% human error
    assert not bias["significant"]
    assert any("human-level margin" in reason for reason in result["reasons"])


def test_without_the_human_margin_the_equal_gaps_are_both_problems():
    result = verdict(0.15, 0.16, human=0.14, human_margin=0)
    assert result["verdict"] == "high bias and high variance"


def test_a_gap_dwarfed_by_the_largest_is_not_limiting_but_one_at_min_share_is():
    small = verdict(0.15, 0.16)  # variance 1 point against bias 15
    assert small["gaps"]["variance"]["significant"] and not small["gaps"]["variance"]["limiting"]
    comparable = verdict(0.10, 0.13)  # variance 3 points against bias 10: 0.3 of it
    assert comparable["verdict"] == "high bias and high variance"
    assert comparable["problems"] == ["avoidable_bias", "variance"]  # biggest gap first


def test_min_gap_is_configurable():
    assert verdict(0.005, 0.01, min_gap=0.004)["verdict"] == "high bias and high variance"
    assert verdict(0.01, 0.11, min_gap=0.2)["verdict"] == "good fit"


def test_gaps_are_the_differences_of_neighbouring_errors():
    result = verdict(0.04, 0.12, human=0.01, train_dev=0.05, test=0.2)
    gaps = {name: gap["value"] for name, gap in result["gaps"].items()}
    assert gaps == pytest.approx({"avoidable_bias": 0.03, "variance": 0.01,
                                  "data_mismatch": 0.07, "dev_overfitting": 0.08})
    assert result["gaps"]["variance"]["from"] == ["train_dev", "train"]


def test_a_dev_set_unlike_the_training_data_is_a_data_mismatch():
    result = verdict(0.02, 0.20, train_dev=0.025)
    assert result["verdict"] == "data mismatch"
    assert result["limiting"] == "data_mismatch"


def test_variance_still_wins_over_a_smaller_mismatch():
    result = verdict(0.01, 0.14, train_dev=0.10)
    assert result["verdict"] == "high variance"
    assert result["problems"] == ["variance", "data_mismatch"]


def test_the_test_error_is_reported_but_never_changes_the_verdict():
    plain = verdict(0.01, 0.11)
    with_test = verdict(0.01, 0.11, test=0.40)
    assert with_test["verdict"] == plain["verdict"]
    assert with_test["gaps"]["dev_overfitting"]["significant"]
    assert "dev_overfitting" not in with_test["problems"]


def test_no_dev_error_means_no_verdict():
    result = verdict(0.1, None)
    assert result["verdict"] is None
    assert result["gaps"]["variance"] is None


def test_dev_better_than_train_is_no_variance_problem():
    result = verdict(0.03, 0.01)
    assert result["gaps"]["variance"]["value"] == pytest.approx(-0.02)
    assert result["verdict"] == "high bias"
