"""Per-sample filters that turn evidence into flags with reasons."""
