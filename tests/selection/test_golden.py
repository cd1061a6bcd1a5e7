"""Golden values: the default selection (herding, proportional, --per-class 20) on examples/fashion.

Recorded with the code before the speed-up (issue 12), on the default model's vectors of every
example image (tests/data/fashion_vectors.npz, stored as float16; recorded from those same
float16 values, which pick as the float32 ones did). Faster clustering or herding must not change
the chosen k nor a single pick.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from repsample.selection.strategies import HerdingSelector

DATA = Path(__file__).parent.parent / "data" / "fashion_vectors.npz"

GOLDEN: dict[str, tuple[int, list[str]]] = {
    'test/Ankle boot': (7, [
        'test_00970.png', 'test_01718.png', 'test_02550.png', 'test_03310.png',
        'test_04132.png', 'test_04601.png', 'test_05512.png', 'test_05794.png',
        'test_06190.png', 'test_06740.png', 'test_06825.png', 'test_06932.png',
        'test_07145.png', 'test_07186.png', 'test_07508.png', 'test_08079.png',
        'test_08554.png', 'test_08687.png', 'test_08694.png', 'test_09014.png',
    ]),
    'test/Bag': (8, [
        'test_00034.png', 'test_00105.png', 'test_01014.png', 'test_01161.png',
        'test_01525.png', 'test_02271.png', 'test_02289.png', 'test_02728.png',
        'test_02789.png', 'test_02796.png', 'test_03061.png', 'test_03465.png',
        'test_04301.png', 'test_04816.png', 'test_04963.png', 'test_08357.png',
        'test_08561.png', 'test_09041.png', 'test_09369.png', 'test_09873.png',
    ]),
    'test/Sandal': (7, [
        'test_00139.png', 'test_00641.png', 'test_00846.png', 'test_01307.png',
        'test_01464.png', 'test_02037.png', 'test_02053.png', 'test_02847.png',
        'test_04057.png', 'test_04182.png', 'test_04398.png', 'test_04617.png',
        'test_04815.png', 'test_04879.png', 'test_05024.png', 'test_06279.png',
        'test_08250.png', 'test_08363.png', 'test_08890.png', 'test_09542.png',
    ]),
    'test/Sneaker': (9, [
        'test_00104.png', 'test_00218.png', 'test_01078.png', 'test_01195.png',
        'test_01389.png', 'test_02120.png', 'test_02392.png', 'test_03252.png',
        'test_03507.png', 'test_04492.png', 'test_06586.png', 'test_07462.png',
        'test_07471.png', 'test_07731.png', 'test_07928.png', 'test_08604.png',
        'test_08713.png', 'test_08720.png', 'test_09056.png', 'test_09869.png',
    ]),
    'test/T-shirt top': (6, [
        'test_00605.png', 'test_00910.png', 'test_01158.png', 'test_01358.png',
        'test_01858.png', 'test_02286.png', 'test_03275.png', 'test_03349.png',
        'test_03467.png', 'test_03628.png', 'test_03919.png', 'test_04118.png',
        'test_04765.png', 'test_06109.png', 'test_06191.png', 'test_07161.png',
        'test_08095.png', 'test_08295.png', 'test_08337.png', 'test_08725.png',
    ]),
    'train/Ankle boot': (5, [
        'train_00513.png', 'train_01700.png', 'train_05638.png', 'train_06074.png',
        'train_06726.png', 'train_07493.png', 'train_08207.png', 'train_10505.png',
        'train_20908.png', 'train_24316.png', 'train_25011.png', 'train_25256.png',
        'train_28890.png', 'train_35585.png', 'train_39228.png', 'train_41140.png',
        'train_45815.png', 'train_46373.png', 'train_47562.png', 'train_58894.png',
    ]),
    'train/Bag': (5, [
        'train_02024.png', 'train_07986.png', 'train_09301.png', 'train_11079.png',
        'train_11362.png', 'train_11926.png', 'train_17134.png', 'train_17526.png',
        'train_18625.png', 'train_22446.png', 'train_22950.png', 'train_26677.png',
        'train_29558.png', 'train_37295.png', 'train_40426.png', 'train_47697.png',
        'train_48432.png', 'train_49535.png', 'train_52184.png', 'train_55220.png',
    ]),
    'train/Sandal': (7, [
        'train_00009.png', 'train_06416.png', 'train_06727.png', 'train_09048.png',
        'train_12545.png', 'train_13644.png', 'train_13859.png', 'train_13909.png',
        'train_14101.png', 'train_21362.png', 'train_27210.png', 'train_27934.png',
        'train_30231.png', 'train_36581.png', 'train_37399.png', 'train_40310.png',
        'train_49362.png', 'train_53159.png', 'train_56167.png', 'train_59278.png',
    ]),
    'train/Sneaker': (5, [
        'train_01891.png', 'train_03474.png', 'train_05126.png', 'train_15924.png',
        'train_16869.png', 'train_19428.png', 'train_21000.png', 'train_23205.png',
        'train_23830.png', 'train_30053.png', 'train_32875.png', 'train_34776.png',
        'train_36067.png', 'train_37213.png', 'train_39884.png', 'train_44318.png',
        'train_45557.png', 'train_46699.png', 'train_50646.png', 'train_51041.png',
    ]),
    'train/T-shirt top': (7, [
        'train_00415.png', 'train_05534.png', 'train_08840.png', 'train_08982.png',
        'train_10027.png', 'train_10528.png', 'train_11696.png', 'train_18771.png',
        'train_20658.png', 'train_24040.png', 'train_24246.png', 'train_29805.png',
        'train_39074.png', 'train_39179.png', 'train_43968.png', 'train_44829.png',
        'train_46422.png', 'train_48291.png', 'train_48782.png', 'train_59943.png',
    ]),
    'val/Ankle boot': (5, [
        'val_00401.png', 'val_00776.png', 'val_03477.png', 'val_03785.png',
        'val_04215.png', 'val_04458.png', 'val_04507.png', 'val_04698.png',
        'val_05946.png', 'val_06425.png', 'val_06461.png', 'val_07378.png',
        'val_07836.png', 'val_07954.png', 'val_08169.png', 'val_08301.png',
        'val_08342.png', 'val_08367.png', 'val_08767.png', 'val_08856.png',
    ]),
    'val/Bag': (8, [
        'val_00231.png', 'val_00700.png', 'val_00850.png', 'val_01338.png',
        'val_01589.png', 'val_01791.png', 'val_03067.png', 'val_03344.png',
        'val_03445.png', 'val_03449.png', 'val_03764.png', 'val_03765.png',
        'val_04586.png', 'val_05339.png', 'val_05632.png', 'val_05658.png',
        'val_07559.png', 'val_08361.png', 'val_09249.png', 'val_09270.png',
    ]),
    'val/Sandal': (5, [
        'val_00084.png', 'val_00567.png', 'val_00868.png', 'val_00945.png',
        'val_01180.png', 'val_01532.png', 'val_01757.png', 'val_02528.png',
        'val_02536.png', 'val_03490.png', 'val_04171.png', 'val_04794.png',
        'val_04977.png', 'val_04983.png', 'val_05322.png', 'val_06112.png',
        'val_06979.png', 'val_07776.png', 'val_08575.png', 'val_09461.png',
    ]),
    'val/Sneaker': (10, [
        'val_00184.png', 'val_00574.png', 'val_01651.png', 'val_01959.png',
        'val_02533.png', 'val_02600.png', 'val_02635.png', 'val_04790.png',
        'val_05263.png', 'val_05362.png', 'val_05708.png', 'val_06193.png',
        'val_06615.png', 'val_06686.png', 'val_07015.png', 'val_07325.png',
        'val_07676.png', 'val_07772.png', 'val_08743.png', 'val_09810.png',
    ]),
    'val/T-shirt top': (12, [
        'val_00332.png', 'val_00463.png', 'val_00890.png', 'val_01293.png',
        'val_01364.png', 'val_01504.png', 'val_01766.png', 'val_03575.png',
        'val_04032.png', 'val_04472.png', 'val_05755.png', 'val_05999.png',
        'val_06365.png', 'val_06542.png', 'val_06572.png', 'val_06926.png',
        'val_08689.png', 'val_09202.png', 'val_09309.png', 'val_09884.png',
    ]),
}


def groups() -> dict[str, tuple[np.ndarray, list[str]]]:
    """split/class -> (its vectors as float32, file names), in sorted path order."""
    with np.load(DATA) as z:
        vectors, paths = z["vectors"].astype(np.float32), [str(p) for p in z["paths"]]
    rows: dict[str, list[int]] = defaultdict(list)
    for i, path in enumerate(paths):
        rows["/".join(path.split("/")[:2])].append(i)
    return {g: (vectors[r], [paths[i].split("/", 2)[2] for i in r]) for g, r in rows.items()}


@pytest.mark.parametrize("group", sorted(GOLDEN))
def test_default_selection_unchanged(group: str) -> None:
    X, names = groups()[group]
    selector = HerdingSelector(20, allocation="proportional").fit(X)
    k, selected = GOLDEN[group]
    assert selector.k_ == k
    assert [names[i] for i in selector.selected_indices_] == selected


def test_golden_covers_every_group() -> None:
    assert sorted(groups()) == sorted(GOLDEN)
