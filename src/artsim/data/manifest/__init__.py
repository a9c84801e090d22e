"""Manifests, a data set's table of original and generated works: what a row is
(:mod:`.items`), the file formats (:mod:`.formats`), reading, checking and writing
(:mod:`.manifest`), and the split into training, validation and calibration groups
(:mod:`.split`)."""
