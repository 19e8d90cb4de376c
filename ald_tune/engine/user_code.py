"""The one wrapper around the user's own code: ``model.factory``, its module and its nets.

Whatever the user's code raises (at import, when the factory is called, in a first
``encode``/``decode`` on two samples) becomes one :class:`~ald_tune.errors.ConfigError`
line that names the factory, the exception and where it was raised; the original
exception stays chained for ``--debug``. A file (a checkpoint, a model file) never
chooses code: a factory stored in it is used only when the caller names it
(:func:`allowed_factory`).
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ald_tune.errors import ConfigError, DataError, shown

#: What a factory is: its import path, or the callable itself (passed by the caller).
Factory = str | Callable[..., nn.Module]

DEBUG_HINT = "(--debug shows the traceback)"


def factory_name(factory: Factory) -> str:
    """The factory as a message shows it: its path, or the callable's qualified name."""
    if isinstance(factory, str):
        return shown(factory)
    name = getattr(factory, "__qualname__", None) or type(factory).__name__
    return f"{getattr(factory, '__module__', '?')}:{name}"


def where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of the user's code an exception passed through:
    not Python's own library, torch or ald-tune (a SyntaxError: its own file and line)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    theirs = [f for f in frames if not _library(f.filename)] or list(frames)
    return f"{theirs[-1].filename}:{theirs[-1].lineno}" if theirs else "?"


def _library(filename: str) -> bool:
    import sysconfig

    if filename.startswith("<"):  # frozen modules, <string>
        return True
    path = os.path.abspath(filename)
    roots = [sysconfig.get_paths()["stdlib"], os.path.dirname(torch.__file__)]
    roots.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # ald_tune
    return any(path.startswith(os.path.join(root, "")) for root in roots)


def _raised(what: str, exc: BaseException, fix: str) -> ConfigError:
    text = shown(str(exc), 160)[1:-1] if str(exc) else ""
    return ConfigError(
        f"{what} raised {type(exc).__name__}{': ' + text if text else ''} "
        f"(at {shown(where(exc), 160)[1:-1]}). {fix} {DEBUG_HINT}"
    )


def import_factory(path: str) -> Callable[..., nn.Module]:
    """Import ``package.module:function``; any error in the user's module is one line.

    Raises:
        ConfigError: a module that is not there, one that fails to import (a SyntaxError,
            an exception at import time), or a name that is not a callable in it.
    """
    module, sep, name = path.partition(":")
    if not sep or not name:
        raise ConfigError(
            f"model.factory {shown(path)} must look like package.module:function "
            "and name a callable."
        )
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise ConfigError(
                f"model.factory {shown(path)} cannot be imported ({exc}). Fix: install the "
                "package that holds it (or put it on PYTHONPATH; on a cluster, on every "
                "node) and name it as package.module:function."
            ) from exc
        raise _raised(
            f"model.factory {shown(path)}: importing {module}", exc, "Fix: install what it imports."
        ) from exc
    except Exception as exc:  # the user's module: a SyntaxError or anything it raises
        raise _raised(
            f"model.factory {shown(path)}: importing {module}", exc, "Fix: correct that module."
        ) from exc
    factory = getattr(imported, name, None)
    if factory is None:
        raise ConfigError(
            f"model.factory {shown(path)} cannot be imported (module {module!r} has no "
            f"attribute {name!r}). Fix: name a function the module defines, as "
            "package.module:function."
        )
    if not callable(factory):
        raise ConfigError(
            f"model.factory {shown(path)} must look like package.module:function "
            "and name a callable."
        )
    return factory


def call_factory(
    factory: Factory, kwargs: dict, n_z: int, sample_shape: tuple[int, ...]
) -> nn.Module:
    """``factory(n_z=..., sample_shape=..., **model.kwargs)``, the factory imported first
    when it is a path.

    Raises:
        ConfigError: a path that does not import, a call with the wrong signature, or
            any exception the factory raises (naming it, the exception and where).
    """
    fn = import_factory(factory) if isinstance(factory, str) else factory
    name = factory_name(factory)
    try:
        return fn(n_z=n_z, sample_shape=sample_shape, **kwargs)
    except TypeError as exc:
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
            # raised by the call itself (not inside the factory): the signature is wrong
            raise ConfigError(
                f"model.factory {name} could not be called as "
                f"f(n_z=..., sample_shape=..., **model.kwargs) ({exc}). Fix: accept "
                "those arguments."
            ) from exc
        raise _raised(f"model.factory {name}", exc, "Fix: correct the factory.") from exc
    except Exception as exc:  # anything the user's code raises
        raise _raised(f"model.factory {name}", exc, "Fix: correct the factory.") from exc


def check_outputs(nets: Any, factory: Factory, n_z: int, sample_shape: tuple[int, ...]) -> None:
    """Encode two zero samples and decode their means (no gradients, RNG and train mode
    restored): ``encode`` must give two ``(2, n_z)`` tensors and ``decode`` one of shape
    ``(2, *sample_shape)``, or the run would fail later inside torch.

    Raises:
        ConfigError: naming the factory, the method and the shape it returned (or what it
            raised).
    """
    name = factory_name(factory)
    device = next((p.device for p in nets.parameters()), torch.device("cpu"))
    x = torch.zeros(2, *sample_shape, device=device)
    was_training = nets.training
    nets.eval()  # no batch-norm statistics change
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            try:
                out = nets.encode(x)
            except Exception as exc:
                raise _raised(f"model.factory {name}'s encode", exc, "Fix: correct it.") from exc
            if not (
                isinstance(out, (tuple, list))
                and len(out) == 2
                and all(torch.is_tensor(t) and tuple(t.shape) == (2, n_z) for t in out)
            ):
                raise ConfigError(
                    f"model.factory {name}'s encode returned {_shapes(out)} for 2 samples; it "
                    f"must return (mu, logvar), each of shape (2, {n_z}). Fix: return the two "
                    "heads' outputs."
                )
            try:
                recon = nets.decode(out[0])
            except Exception as exc:
                raise _raised(f"model.factory {name}'s decode", exc, "Fix: correct it.") from exc
            want = (2, *sample_shape)
            if not torch.is_tensor(recon) or tuple(recon.shape) != want:
                raise ConfigError(
                    f"model.factory {name}'s decode returned {_shapes(recon)} for 2 latents; "
                    f"the data's samples need shape {want}. Fix: decode to the sample shape "
                    "(e.g. out.view(-1, *sample_shape))."
                )
    finally:
        nets.train(was_training)


def _shapes(value: Any) -> str:
    if torch.is_tensor(value):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_shapes(v) for v in value[:4]) + ")"
    return f"a {type(value).__name__}"


def allowed_factory(
    stored: str | None, given: Factory | None, source: str, how: str
) -> Factory | None:
    """The factory a stored file's model may be rebuilt with: only one the caller names.

    Args:
        stored: the ``model.factory`` the file's config names (None: a built-in net).
        given: what the caller allowed: the callable itself, or the path, which must equal
            ``stored``.
        source: the file, as messages name it.
        how: how this caller allows a factory (e.g. ``"--set model.factory=PATH"``).

    Returns:
        None for a built-in net; else the callable, or the path to import.

    Raises:
        DataError: the file names a factory the caller did not name (nothing is imported).
    """
    if stored is None:
        return None
    if given is None:
        raise DataError(
            f"{source} names model.factory {shown(stored)}; a file never chooses the code that "
            f"runs, so it is not imported. Fix: if you trust it, allow it with "
            f"{how.replace('PATH', shown(stored)[1:-1])}."
        )
    if isinstance(given, str) and given != stored:
        raise DataError(
            f"{source} names model.factory {shown(stored)}, not the {shown(given)} you "
            f"allowed; nothing is imported. Fix: allow {shown(stored)} if you trust it, or "
            "load the file your factory wrote."
        )
    return given
