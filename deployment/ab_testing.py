"""Part 5: A/B testing. (Being written; see the issue for Part 5.)"""

__all__: list[str] = []
