"""timm's layer groups (``model.group_matcher()``) for stacks of ``blocks.{i}``, numbered as vitzoo's layer decay.

timm's ``param_groups_layer_decay`` ranks parameters by the ordinal a model's ``group_matcher`` gives them: ``stem``
first, then the block groups in order, unmatched parameters (norms, head) last; an ordinal ending in
``MATCH_PREV_GROUP`` joins the group just before it. :func:`stack_matcher` builds that dict for block stacks
run one after the other (a ViT trunk; the factorised encoder's spatial then temporal transformer), with the
rule ``vitzoo.train.optim.layer_ids`` uses: the first stack's position tables and class token belong to the
stem, a later stack's to the last block before it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from timm.models._manipulate import MATCH_PREV_GROUP

TABLES = r"(?:cls_token|pos_embed|time_embed|temporal_pos_embed)"


def stack_matcher(stem: str, stacks: Sequence[tuple[str, int]]) -> dict:
    """timm's ``group_matcher`` dict for ``stacks`` of ``(parameter-name prefix, depth)`` after ``stem`` (a regex).

    A stack's blocks are ``<prefix>blocks.{i}``; its tables ``<prefix>cls_token`` / ``pos_embed`` / ... join the
    stem (first stack) or the previous stack's last block.
    """
    (first, _), *later = stacks
    groups: dict = {"stem": rf"{stem}|^{re.escape(first)}{TABLES}"}
    previous, depth = "blocks", stacks[0][1]
    groups[previous] = [(rf"^{re.escape(first)}blocks\.(\d+)", None)]
    for k, (prefix, stack_depth) in enumerate(later, start=1):
        groups[previous].append((rf"^{re.escape(prefix)}{TABLES}", (depth - 1, *MATCH_PREV_GROUP)))
        previous, depth = f"blocks{k}", stack_depth
        groups[previous] = [(rf"^{re.escape(prefix)}blocks\.(\d+)", None)]
    return groups
