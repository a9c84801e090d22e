"""The held-out family, for evaluation only: ISC/AnyPattern-like copy patterns written apart from
the training family. :mod:`.derive` makes evaluation manifests from the patterns of
:mod:`.transforms` (overlays and frames in :mod:`.overlays`, what they share in :mod:`.canvas`)
and the prompts of :mod:`.prompts`."""
