"""The user's own reported results (their course report's table), shipped as package data.

    user_results() -> {"source", "protocol", "models": [{"name", "ours", "lr", "dropout",
                       "params", "train_acc", "val_acc", "test_acc", "seconds"}, ...]}
    user_entry(model) -> the user's row for one of our model names, or None

"ours" lists our registry names for the user's architecture, the exact reproduction first
(e.g. the user's "vggnet" is our vgg11_seed: same 128,806,154 parameters).
"""

from __future__ import annotations

import functools
import json
from importlib import resources


@functools.cache
def user_results() -> dict:
    text = resources.files(__package__).joinpath("user_results.json").read_text("utf-8")
    return json.loads(text)


def user_entry(model: str) -> dict | None:
    for entry in user_results()["models"]:
        if model in entry["ours"]:
            return entry
    return None


def is_user_architecture(model: str) -> bool:
    return user_entry(model) is not None
