"""Personal data, the primitives every layer uses: keyed hashing (the keyring and the key chain a lake records) and scrubbing of free text."""
