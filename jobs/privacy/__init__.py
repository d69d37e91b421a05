"""Personal data: the keyring, scrubbing, erasure and suppression with proof, retention and key rotation."""
