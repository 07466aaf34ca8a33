"""The operator's YAML files (agency registry, deadlines): read and validated, or one error
that names the file, the place in it and what is wrong."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class OperatorFileError(ValueError):
    """A file the hub cannot run with; `lapor-hub` prints the message and exits 2."""


def load_yaml(
    model: type[M], path: Path | None, packaged: str, what: str,
    error: type[OperatorFileError] = OperatorFileError,
) -> M:
    """`path` as a valid `model`; the packaged `hub/data/<packaged>` when `path` is None."""
    try:
        if path is None:
            text = resources.files("hub.data").joinpath(packaged).read_text("utf-8")
        else:
            text = path.read_text("utf-8")
        return model.model_validate(yaml.safe_load(text))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise error(f"cannot read {what}: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        # Entries counted from 1, as a person counts them in the file ("rules.#12").
        where = ".".join(f"#{p + 1}" if isinstance(p, int) else str(p)
                         for p in err["loc"]) or "top level"
        raise error(f"{what}: {where}: {err['msg']}") from exc
