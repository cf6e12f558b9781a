"""Stanford Sentiment Treebank (SST-5): `<data_dir>/sst/{train,dev,test}.txt`, one PTB tree per line.

A line looks like `(3 (2 It) (4 (4 (2 's) (4 (3 (2 a) (4 (3 lovely) (2 film))) ...`: every node carries a
sentiment class 0-4, the root's class is the sentence's label and the leaves, in order, are its words.
"""

from __future__ import annotations

import re
from pathlib import Path

from hintgrpo.data.errors import RowGuard
from hintgrpo.data.loaders import check_split, dataset_folder, make_sample, register_loader
from hintgrpo.tasks import TaskSpec

SST_SPLITS = ("train", "dev", "test")
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_CLASS = re.compile("[0-9]+")
# PTB escapes of brackets and of the characters PTB backslash-escapes.
PTB_UNESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}


def unescape_ptb(word: str) -> str:
    return PTB_UNESCAPES.get(word, word).replace("\\/", "/").replace("\\*", "*")


def parse_sst_tree(line: str) -> tuple[int, list[str]]:
    """Root class and leaf words of one PTB tree; a malformed tree raises ValueError saying what is wrong."""
    tokens = _TOKEN.findall(line)
    if not tokens or tokens[0] != "(":
        raise ValueError("a tree must start with '('")
    words: list[str] = []
    children: list[int] = []  # how many children each open node has so far
    root_label, closed, position = -1, False, 0
    while position < len(tokens):
        token = tokens[position]
        if closed:
            what = "unbalanced parentheses: an extra ')'" if token == ")" else f"{token!r} after the end of the tree"
            raise ValueError(f"{what} at token {position + 1}")
        if token == "(":
            label = tokens[position + 1] if position + 1 < len(tokens) else "<end of line>"
            if not _CLASS.fullmatch(label):
                raise ValueError(f"node label {label!r} at token {position + 2} is not a class number")
            if children:
                children[-1] += 1
            else:
                root_label = int(label)
            children.append(0)
            position += 2
            continue
        if token == ")":
            if children.pop() == 0:
                raise ValueError(f"empty node closed at token {position + 1}")
            closed = not children
        else:
            children[-1] += 1
            words.append(unescape_ptb(token))
        position += 1
    if not closed:
        raise ValueError(f"unbalanced parentheses: {len(children)} node(s) left open")
    return root_label, words


@register_loader("sst")
def load_sst(data_dir: Path, split: str, task: TaskSpec, skip_bad_rows: bool) -> list[dict]:
    """SST-5 sentences (root nodes only): class k in 0-4 becomes task.labels[k], "very negative" .. "very positive"."""
    check_split("sst", split, SST_SPLITS)
    path = dataset_folder(data_dir, "sst", f"{split}.txt") / f"{split}.txt"
    guard, rows = RowGuard(path, skip_bad_rows), []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for line_number, line in enumerate(lines, start=1):
        if not line.strip() or not guard.decodes(line_number, {"tree": line}):
            continue
        try:
            label, words = parse_sst_tree(line)
        except ValueError as error:
            guard.reject(line_number, "tree", str(error))
            continue
        if label >= len(task.labels):
            guard.reject(line_number, "tree", f"root class {label} is not one of 0-{len(task.labels) - 1}")
            continue
        text = guard.text(line_number, "tree", " ".join(words))
        if text is None:
            continue
        rows.append(make_sample(task, f"{split}_{line_number}", text, task.labels[label]))
    guard.report()
    return rows
