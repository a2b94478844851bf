"""Deploy gate for LLM serving stacks: bring the stack up, load it, break it, judge it."""

__version__ = "0.1.0"
