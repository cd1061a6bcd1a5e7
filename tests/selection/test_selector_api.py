"""Selectors are scikit-learn estimators: parameters, clone, repr, fit's signature, fitted state,
the estimator checks that apply to a selector, and strategies registered by a user."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks
from sklearn.utils.validation import check_is_fitted

import repsample
from conftest import FAST_MODEL, TreeFactory
from repsample.errors import UsageError
from repsample.output.files import read_csv_rows as read_manifest  # the rows as written
from repsample.selection.cluster import choose_k
from repsample.selection.strategies import STRATEGIES, ClusterSelector, register_strategy

NAMES = STRATEGIES.names()
FITTED = ("selected_indices_", "new_indices_", "kept_indices_", "n_features_in_", "labels_", "k_",
          "cluster_centers_", "distances_", "silhouette_scores_", "silhouette_sample_", "quotas_",
          "pick_order_")


def blobs(n: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c, 0.5, (n // 3, 6)) for c in (-4, 0, 4)]).astype(np.float32)


def small(name: str, **params: Any) -> ClusterSelector:
    return STRATEGIES.get(name)(12, k_min=2, k_max=4, random_state=3, **params)


@pytest.mark.parametrize("name", NAMES)
def test_clone_round_trips_every_strategy(name: str) -> None:
    sel = small(name, allocation="sqrt")
    twin = clone(sel)
    assert twin is not sel and type(twin) is type(sel)
    assert twin.get_params() == sel.get_params()
    X = blobs()
    assert twin.fit(X).selected_indices_.tolist() == sel.fit(X).selected_indices_.tolist()
    assert not hasattr(clone(sel), "selected_indices_")  # clone copies parameters, not fitted state


@pytest.mark.parametrize("name", NAMES)
def test_get_and_set_params(name: str) -> None:
    sel = STRATEGIES.get(name)()
    params = sel.get_params()
    expected = {"n_select": 1000, "allocation": "proportional", "k_min": 5, "k_max": 20,
                "silhouette_sample": 3000, "random_state": 42}
    if name in ("typical", "facility"):
        expected["n_neighbors"] = 20
    if name == "cover":
        expected["cover_share"] = 0.2
    assert params == expected
    assert sel.set_params(n_select=7, allocation="equal") is sel
    assert sel.n_select == 7 and sel.get_params()["allocation"] == "equal"
    with pytest.raises(ValueError, match="Invalid parameter"):
        sel.set_params(budget=3)


def test_repr_shows_changed_parameters() -> None:
    assert repr(repsample.HerdingSelector()) == "HerdingSelector()"
    assert repr(repsample.TypicalSelector(50, n_neighbors=5)) == \
        "TypicalSelector(n_neighbors=5, n_select=50)"


def test_n_neighbors_is_a_parameter_that_changes_the_picks() -> None:
    X = blobs(300, seed=1)
    few = small("facility", n_neighbors=2).fit(X).selected_indices_.tolist()
    many = small("facility", n_neighbors=40).fit(X).selected_indices_.tolist()
    assert few != many
    typical = small("typical", n_neighbors=3).fit(X)
    assert np.isfinite(typical.typicality_).all()


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_ignores_y(name: str) -> None:
    X = blobs()
    sel = small(name)
    assert sel.fit(X) is sel
    with_y = small(name).fit(X, np.arange(len(X)) % 2)
    assert with_y.selected_indices_.tolist() == sel.selected_indices_.tolist()


@pytest.mark.parametrize("name", NAMES)
def test_fitted_attributes_appear_only_after_fit(name: str) -> None:
    sel = small(name)
    with pytest.raises(NotFittedError):
        check_is_fitted(sel)
    assert not [a for a in FITTED if hasattr(sel, a)]
    sel.fit(blobs())
    check_is_fitted(sel)
    assert all(hasattr(sel, a) for a in FITTED)
    assert sel.n_features_in_ == 6
    public = [a for a in vars(sel) if not a.startswith("_")]
    assert all(a.endswith("_") for a in public if a not in sel.get_params())


@pytest.mark.parametrize("name", NAMES)
def test_a_matrix_within_the_budget_is_kept_whole_and_fitted(name: str) -> None:
    sel = STRATEGIES.get(name)(50).fit(blobs(30))
    check_is_fitted(sel)
    assert sel.selected_indices_.tolist() == list(range(30)) and sel.k_ == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_select": 0}, "n_select must be at least 1, got 0"),
        ({"n_select": 2.5}, "n_select must be an integer, got 2.5"),
        ({"silhouette_sample": 99}, "silhouette_sample must be at least 100, got 99"),
        ({"allocation": "fair"}, "allocation 'fair' is unknown; choose one of: equal, proportional"),
        ({"k_min": 0}, "k_min must be at least 1, got 0"),
        ({"k_min": 6, "k_max": 4}, r"k_min must be at most k_max \(4\), got 6"),
        ({"random_state": -1}, "random_state must be in"),
        ({"n_neighbors": 0}, "n_neighbors must be at least 1, got 0"),
    ],
)
def test_parameters_are_checked_at_fit_and_named(params: dict[str, Any], message: str) -> None:
    sel = repsample.FacilitySelector(**params)  # __init__ only stores, as scikit-learn requires
    assert all(getattr(sel, k) == v for k, v in params.items())
    with pytest.raises(UsageError, match=message) as caught:
        sel.fit(blobs())
    assert isinstance(caught.value, ValueError)


def test_numpy_integers_are_integers() -> None:
    sel = repsample.CentroidSelector(np.int64(9), k_min=np.int32(2), k_max=3).fit(blobs())
    assert len(sel.selected_indices_) == 9


@pytest.mark.parametrize("name", NAMES)
def test_an_earlier_fits_picks_give_the_same_fit(name: str) -> None:
    """fit(picks=new_indices_) on the same X, parameters, keep and clustering is the same fit,
    the strategy's own attributes included, without picking again."""
    X, keep = blobs(), [0, 50]
    clustering = choose_k(X, 2, 4, 3, 3000)
    first = small(name).fit(X, keep=keep, clustering=clustering)
    again = small(name).fit(X, keep=keep, clustering=clustering, picks=first.new_indices_)
    assert sorted(vars(again)) == sorted(vars(first))
    for attribute, value in vars(first).items():
        assert np.array_equal(getattr(again, attribute), value, equal_nan=True) \
            if isinstance(value, np.ndarray) else getattr(again, attribute) == value
    assert set(first.new_indices_) == set(first.selected_indices_) - set(keep)


@pytest.mark.parametrize("picks", [[0, 1], [3, 3], [-1], [120], list(range(1, 13))])
def test_picks_that_cannot_be_an_earlier_fits_are_refused(picks: list[int]) -> None:
    """Kept rows, repeats, rows outside X and more than the budget: a UsageError naming picks."""
    with pytest.raises(UsageError, match="picks are not the new rows of a fit of 120 rows"):
        small("refine").fit(blobs(), keep=[0], picks=picks)


def test_fit_arguments_that_do_not_fit_the_matrix() -> None:
    X = blobs()
    with pytest.raises(UsageError, match=r"keep holds row numbers outside 0\.\.119"):
        repsample.CentroidSelector(10).fit(X, keep=[-1])
    clustering = choose_k(X[:60], 2, 3, 42, 3000)
    with pytest.raises(UsageError, match="clustering has 60 labels for 120 rows"):
        repsample.CentroidSelector(10).fit(X, clustering=clustering)


# scikit-learn's own estimator checks that concern an unsupervised estimator with fit only.
# Left out, because they test what a selector does not have: predict, transform, score and
# their consistency (check_fit2d_predict1d, check_methods_*, check_dict_unchanged,
# check_transformer_*, check_classifiers_*, check_regressors_*, check_clustering,
# check_outliers_*), sample_weight (check_sample_weights_*), partial_fit, set_output and
# feature names (check_*_get_feature_names_out*, check_dataframe_column_names_consistency),
# the array API; check_estimators_data_not_an_array compares predictions on lists and arrays
# (a helper of the classifier and regressor checks); check_param_validation drives
# scikit-learn's private constraint objects (sklearn.utils._param_validation), while ours are
# repsample.params constraints (their messages name the parameter as the CLI does).
ESTIMATOR_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_fit_score_takes_y",
    "check_estimators_fit_returns_self",
    "check_dont_overwrite_parameters",
    "check_estimators_overwrite_params",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_requires_y_none",
    "check_fit_idempotent",
    "check_estimators_pickle",
    "check_estimators_dtypes",
    "check_dtype_object",
    "check_complex_data",
    "check_estimators_nan_inf",
    "check_estimators_empty_data_messages",
    "check_estimator_sparse_array",
    "check_estimator_sparse_matrix",
    "check_fit1d",
    "check_fit2d_1sample",
    "check_fit2d_1feature",
    "check_f_contiguous_array_estimator",
    "check_readonly_memmap_input",
]


@pytest.mark.parametrize("check", ESTIMATOR_CHECKS)
@pytest.mark.parametrize("name", NAMES)
def test_scikit_learn_estimator_checks(name: str, check: str) -> None:
    # Budget below the checks' ~20-row matrices, so the clustering path runs, not the whole-keep one.
    selector = STRATEGIES.get(name)(5, k_min=2, k_max=3, random_state=0)
    run: Callable[[str, ClusterSelector], None] = getattr(estimator_checks, check)
    run(type(selector).__name__, selector)


class LastRowsSelector(ClusterSelector):
    """Test strategy: the last rows of the group, whatever their clusters."""

    def _select(self, X: np.ndarray, kept: np.ndarray, budget: int,
                rng: np.random.RandomState) -> np.ndarray:
        pool = np.setdiff1d(np.arange(len(X)), kept)
        return pool[len(pool) - min(budget, len(pool)):]


@pytest.fixture
def last_rows() -> Iterator[str]:
    name = "last-rows"
    assert repsample.register_strategy(name, LastRowsSelector) is LastRowsSelector
    yield name
    del STRATEGIES._items[name]  # the registry has no removal: other tests list the built-in ones


def test_a_registered_strategy_selects_by_name(last_rows: str, make_tree: TreeFactory,
                                               tmp_path: Path, cache_path: Path) -> None:
    assert last_rows in repsample.list_strategies()
    root = make_tree({"train/a": 10})
    result = repsample.select(root, tmp_path / "out", per_class=3, strategy=last_rows, k_min=2,
                              k_max=3, cache=cache_path, report=False, **FAST_MODEL)
    assert result.groups[0].selected == 3
    rows = read_manifest(tmp_path / "out" / "manifest.csv")
    chosen = sorted(r["path"] for r in rows if r["status"] == "selected")
    assert chosen == [f"train/a/img_{i:03d}.jpg" for i in (7, 8, 9)]


def test_a_registered_strategy_picks_again_on_a_rerun(
        last_rows: str, make_tree: TreeFactory, tmp_path: Path, cache_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its code may change under the same name: its picks are never taken from the cache."""
    root = make_tree({"train/a": 10})
    calls: list[int] = []
    real = LastRowsSelector._select

    def counted(self: LastRowsSelector, *args: Any) -> np.ndarray:
        calls.append(1)
        return real(self, *args)

    monkeypatch.setattr(LastRowsSelector, "_select", counted)
    for _ in range(2):
        repsample.select(root, tmp_path / "out", per_class=3, strategy=last_rows, k_min=2, k_max=3,
                         cache=cache_path, report=False, overwrite=True, **FAST_MODEL)
    assert calls == [1, 1]


def test_register_strategy_refuses_a_taken_name_or_a_non_selector() -> None:
    with pytest.raises(ValueError, match="'herding' is already registered"):
        register_strategy("herding", LastRowsSelector)
    with pytest.raises(UsageError, match="cls must be a subclass of ClusterSelector"):
        register_strategy("nothing", dict)  # type: ignore[arg-type]
    assert "nothing" not in STRATEGIES
