"""SuccessDiary: a private, self-hosted diary of wins."""
