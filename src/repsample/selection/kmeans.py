"""KMeans: Lloyd's iterations from given centres, as scikit-learn runs them on one thread.

The same labels and centres, bit for bit, as ``sklearn.cluster.KMeans(n_clusters=k, init=centres,
n_init=1)``'s fit on dense float32 or float64 rows (tests/selection/test_kmeans.py holds it):
the rows centred on their mean; each row's squared distances to the centres from the BLAS call
scikit-learn makes (the centres' squared norms, then ``gemm`` with alpha -2 and beta 1, 256 rows
at a time, through scipy's BLAS, the library scikit-learn calls); a cluster's sum added up row by
row in the rows' order; an empty cluster taking the rows farthest from their centres; the centre
shift summed four features at a time; the same stopping rule. What it spares a run is
scikit-learn's import, 0.6 s of every run that clusters nothing else; each fit costs 1.3-2x
scikit-learn's Cython, so a run turns to scikit-learn's own fits (the same ones) once its fits
here would have cost more than the import (``fitter``).
"""

from __future__ import annotations

import ctypes
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

# Imported with the module: BLAS limits set later (threadpoolctl) must find the library loaded.
from scipy.linalg import blas, cython_blas

LLOYD_WORK = 4096 * 1280 * 16
"""Rows x features x fits a process fits here before it imports scikit-learn for the rest: the
k sweep of a 4,096-row group of 1280-d vectors, about 0.4 s more than scikit-learn's fits on 2
cores, under the import's 0.6 (at 6,000 rows the difference was 1.5 s)."""
_work_done = 0  # by this process (a race between threads only moves the switch a little)
CHUNK = 256  # rows per distance product: scikit-learn's CHUNK_SIZE, which sets the sum's order
MAX_ITER = 300
TOLERANCE = 1e-4  # of the mean per-feature variance: the centre shift that ends the iterations


@dataclass(frozen=True)
class KMeansFit:
    """Each row's cluster (int32) and the centres (the rows' dtype)."""

    labels: np.ndarray
    centers: np.ndarray


def lloyd(X: np.ndarray, init: np.ndarray, max_iter: int = MAX_ITER) -> KMeansFit:
    """Lloyd's iterations on the rows of X (float32 or float64) from the centres ``init``."""
    X = np.array(X, order="C")  # a copy: centred below
    tolerance = np.mean(np.var(X, axis=0)) * TOLERANCE
    mean = X.mean(axis=0)
    X -= mean
    centers = np.array(init, dtype=X.dtype, order="C")
    centers -= mean
    new = np.zeros_like(centers)
    labels = np.full(len(X), -1, dtype=np.int32)
    previous = labels.copy()
    converged = False
    ordered = np.empty_like(X)
    for _ in range(max_iter):
        _assign(X, centers, labels)
        weight = _sums(X, labels, new, ordered)
        _relocate_empty(X, centers, new, weight, labels)
        _average(new, weight)
        shift = _shift(centers, new)
        centers, new = new, centers
        if np.array_equal(labels, previous):
            converged = True
            break
        if (shift**2).sum() <= tolerance:
            break
        previous[:] = labels
    if not converged:
        _assign(X, centers, labels)  # the labels of the last centres
    return KMeansFit(labels, centers + mean)


Fitter = Callable[[np.ndarray, np.ndarray, int], KMeansFit]


def fitter(rows: int, features: int, fits: int) -> Fitter:
    """What makes ``fits`` fits of rows x features: ``lloyd`` while this process's fits here stay
    within LLOYD_WORK and scikit-learn is not imported; else scikit-learn's own (``sklearn_lloyd``)."""
    global _work_done
    work = rows * features * fits
    if "sklearn.cluster" not in sys.modules and _work_done + work <= LLOYD_WORK:
        _work_done += work
        return lloyd
    return sklearn_lloyd


def sklearn_lloyd(X: np.ndarray, init: np.ndarray, max_iter: int = MAX_ITER) -> KMeansFit:
    """scikit-learn's KMeans from the centres ``init``: ``lloyd``'s fit, faster on large X once
    imported. Its thread count is OpenMP's for the calling thread."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # duplicates: fewer distinct centres
        km = KMeans(n_clusters=len(init), init=init, n_init=1, max_iter=max_iter).fit(X)
    return KMeansFit(km.labels_, km.cluster_centers_)


def _assign(X: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> None:
    """Each row's nearest centre (the first on ties), into labels."""
    gemm = _gemm(X.dtype)
    norms = np.einsum("ij,ij->i", centers, centers)
    distances = np.empty((min(CHUNK, len(X)), len(centers)), X.dtype)
    for start in range(0, len(X), CHUNK):
        rows = X[start : start + CHUNK]
        d = distances[: len(rows)]
        d[:] = norms
        gemm(rows, centers, d)  # d = norms - 2 rows . centres^T, as scikit-learn sums it
        labels[start : start + len(rows)] = d.argmin(axis=1)


Gemm = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


@cache
def _gemm(dtype: np.dtype[Any]) -> Gemm:
    """``out += -2 rows . centres^T`` (C-ordered arrays) by the BLAS function scikit-learn calls:
    scipy's, through the pointer scipy exports for Cython (``scipy.linalg.cython_blas``), with
    scikit-learn's arguments (Fortran's view of its row-major product). Called through ctypes,
    which lets other threads run meanwhile; scipy's own Python wrapper holds the GIL, which left
    the k sweep's two threads taking turns. Without that pointer, the wrapper."""
    single = dtype == np.float32
    real = ctypes.c_float if single else ctypes.c_double
    try:
        capsule = cython_blas.__pyx_capi__["sgemm" if single else "dgemm"]
        get_name, get_pointer = ctypes.pythonapi.PyCapsule_GetName, ctypes.pythonapi.PyCapsule_GetPointer
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        address = get_pointer(capsule, get_name(capsule))
    except (AttributeError, KeyError, ValueError):  # not a scipy that exports it: the wrapper
        wrapper = blas.sgemm if single else blas.dgemm
        return lambda rows, centers, out: wrapper(-2.0, centers.T, rows.T, 1.0, out.T, trans_a=1,
                                                  trans_b=0, overwrite_c=1)
    integer, pointer = ctypes.POINTER(ctypes.c_int), ctypes.c_void_p
    call = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, integer, integer, integer,
                            ctypes.POINTER(real), pointer, integer, pointer, integer,
                            ctypes.POINTER(real), pointer, integer)(address)
    alpha, beta = real(-2.0), real(1.0)

    def gemm(rows: np.ndarray, centers: np.ndarray, out: np.ndarray) -> None:
        m, k, d = len(rows), len(centers), rows.shape[1]
        call(b"t", b"n", ctypes.byref(ctypes.c_int(k)), ctypes.byref(ctypes.c_int(m)),
             ctypes.byref(ctypes.c_int(d)), ctypes.byref(alpha), centers.ctypes.data,
             ctypes.byref(ctypes.c_int(d)), rows.ctypes.data, ctypes.byref(ctypes.c_int(d)),
             ctypes.byref(beta), out.ctypes.data, ctypes.byref(ctypes.c_int(k)))

    return gemm


def _sums(X: np.ndarray, labels: np.ndarray, out: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Each cluster's sum of rows into out, added in the rows' order; returns the clusters' sizes.
    ordered: room for X's rows, grouped by cluster here. Reused, and filled by ``take`` without
    its bounds check (the indices are a permutation): fancy indexing into new memory took 4x as
    long, a third of a fit at 10,000 rows."""
    counts = np.bincount(labels, minlength=len(out))
    np.take(X, np.argsort(labels, kind="stable"), axis=0, out=ordered, mode="clip")
    out[:] = 0
    start = 0
    for cluster, end in enumerate(np.cumsum(counts)):
        if end > start and X.shape[1] > 1:  # a reduction down the rows adds them one by one
            np.add.reduce(ordered[start:end], axis=0, out=out[cluster])
        elif end > start:  # one feature: a contiguous reduction, which numpy sums pairwise
            out[cluster] = np.cumsum(ordered[start:end, 0])[-1]
        start = end
    return counts.astype(X.dtype)


def _relocate_empty(X: np.ndarray, old: np.ndarray, new: np.ndarray, weight: np.ndarray,
                    labels: np.ndarray) -> None:
    """An empty cluster takes the row farthest from its centre (scikit-learn's rule)."""
    empty = np.flatnonzero(weight == 0)
    if not len(empty):
        return
    distances = ((X - old[labels]) ** 2).sum(axis=1)
    if np.max(distances) == 0:
        return
    farthest = np.argpartition(distances, -len(empty))[: -len(empty) - 1 : -1]
    for cluster, row in zip(empty, farthest, strict=True):
        source = labels[row]
        new[source] -= X[row]
        new[cluster] = X[row]
        weight[cluster] = 1
        weight[source] -= 1


def _average(sums: np.ndarray, weight: np.ndarray) -> None:
    """Sums to means, multiplying by the reciprocal in the rows' precision; an empty cluster
    takes the largest one's centre."""
    largest = int(np.argmax(weight))
    for cluster in range(len(sums)):
        if weight[cluster] > 0:
            sums[cluster] *= sums.dtype.type(1.0 / float(weight[cluster]))
        else:
            sums[cluster] = sums[largest]


def _shift(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Each centre's move, its squares summed four features at a time, then one group after the
    other (scikit-learn's unrolled loop), in the rows' precision."""
    squares = (new - old) ** 2
    whole = squares.shape[1] // 4 * 4
    fours = ((squares[:, 0:whole:4] + squares[:, 1:whole:4]) + squares[:, 2:whole:4]) \
        + squares[:, 3:whole:4]
    total = np.zeros(len(squares), squares.dtype)
    if whole:
        total += np.cumsum(fours, axis=1, dtype=squares.dtype)[:, -1]
    for feature in range(whole, squares.shape[1]):
        total += squares[:, feature]
    result: np.ndarray = np.sqrt(total)
    return result
