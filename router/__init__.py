"""turnout's router: send each LLM request to the right model, and to another when that one fails."""
