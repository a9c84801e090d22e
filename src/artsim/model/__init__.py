"""Model layer: pretrained towers, the feature cache, projection heads and the embedder."""
