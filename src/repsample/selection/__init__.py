"""Which images to keep: strategies, their greedy rules, clustering and budget allocation."""
