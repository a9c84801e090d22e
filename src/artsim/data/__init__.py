"""Data layer, in four subpackages that import downward only: :mod:`.corpora` (where originals
come from, and the data sets made of them) on :mod:`.families` (derivation families, training and
held-out apart) on :mod:`.manifest` (the table of works: items, file formats, reading and writing,
splits) on :mod:`.pictures` (opening an image, parts of a picture)."""
