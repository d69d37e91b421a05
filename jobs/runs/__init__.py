"""What a run is: its landing window, its id, the report it returns and the lease it holds on the lake."""
