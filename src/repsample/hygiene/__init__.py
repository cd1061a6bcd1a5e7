"""Dataset hygiene: unreadable files, exact and near-duplicates, leaks between splits, outliers.

Pure algorithms, one stage per module: exact (content hashes), near (nearest-neighbour
candidates), confirm (confirmation from the pixels), pairs (both, cached by content), dedup (which
member of a duplicate set stays eligible), leaks (splits), findings (the pass), outliers (each
image's scores in its group), files (check.csv, outliers.csv). The orchestrators that run the
pass live above: dataset.py and checking.py.

Nothing is imported here: a caller imports what it needs from its module, so that reading
split names (leaks) does not load the search, the store and the writers.
"""
