"""What INPUT can be: a folder, a listing, a Hugging Face dataset; the guards that keep it unmodified."""
