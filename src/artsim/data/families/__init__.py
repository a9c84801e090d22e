"""Derivation families: how derived works are made from the originals, training and held-out
apart. :mod:`.training` makes the stand-ins the model trains on (and its training views);
:mod:`.heldout` is written apart from it, for evaluation only. Neither imports the other."""
