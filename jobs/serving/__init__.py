"""What the lake serves to people and tools: read-only SQL by role, and one customer's timeline."""
