"""What OUTPUT holds: its names and columns, the files, the transaction, the one reader and verify."""
