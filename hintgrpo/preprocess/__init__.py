"""Preprocessing before training: augmentation, decoupled quality scores and weights, rewrite instead of filter.

Each step is a `datasets.map` over rows whose results are cached (see `caching`):

- `augment.augment`: new rows from registered augmenters (teacher paraphrases, class-conditional feature
  diffusion, self-questioning examples), each keeping its `source_id`;
- `quality.score`: `fidelity_<modality>`, `consistency` and `reliability` columns in [0, 1], combined into `weight`;
- `rewrite.rewrite`: rows under a weight threshold rewritten minimally by the teacher and rescored, originals kept.

`pipeline` runs them in order (the `hintgrpo augment|score|rewrite` commands, and `recipes/sft.py` with
`preprocess: [...]`); their options are in `hintgrpo.configs`, the teacher they ask in `hintgrpo.teachers`, and
`records` loads teacher CoT files and turns rows into SFT examples.
"""
