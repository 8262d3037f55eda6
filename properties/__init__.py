"""History format and one checker per guarantee."""
