"""Corpora: where originals come from and the data sets made of them. Debian packages fetched
without installing (:mod:`.debian`), the images they offer (:mod:`.candidates`, :mod:`.sources`),
the demo corpus (:mod:`.demo`), a plain folder and the external set (:mod:`.folder`),
leave-one-source-out folds (:mod:`.lofo`) and a synthetic set made in code (:mod:`.synthetic`)."""
