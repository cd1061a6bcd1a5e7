"""Images to vectors: decode, embed (engines, backends), fingerprints, precomputed vectors."""
