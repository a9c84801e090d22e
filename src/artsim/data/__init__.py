"""Data layer: manifests, images, splits, generated stand-ins and the demo corpus."""
