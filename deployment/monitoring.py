"""Part 3: monitoring. (Being written; see the issue for Part 3.)"""

__all__: list[str] = []
