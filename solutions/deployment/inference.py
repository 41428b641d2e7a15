"""Part 2: the inference API. (Being written; see the issue for Part 2.)"""

__all__: list[str] = []
