"""The training family: stand-ins for generated art (:mod:`.derive`, from the image
transformations of :mod:`.transforms` and the prompts of :mod:`.prompts`), and the augmented views
of training (:mod:`.augment` for the fine-tune stage, :mod:`.copyaug` for copy groups)."""
