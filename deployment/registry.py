"""Part 4: the model registry. (Being written; see the issue for Part 4.)"""

__all__: list[str] = []
